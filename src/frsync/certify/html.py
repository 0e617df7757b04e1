"""The HTML report: one self-contained page (inline CSS and SVG, nothing loaded from anywhere),
a card per scenario with its verdict, its evidence and a timeline of the connector's requests.

The timeline plots the cumulative count of requests over time, each request a mark coloured
by its answer, against the line the rate limit allows (burst + rate × t); below it, a strip
shows each request from arrival to answer, so bursts, waits and overlaps are visible.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

WIDTH, PLOT_H = 860, 190
LANE_H, MAX_LANES = 5, 12  # the in-flight strip: one lane per request held at once
LEFT, RIGHT, TOP = 48, 16, 12
COLOURS = {
    "2xx": "#2f9e5b",
    "4xx": "#e0a100",
    "429": "#e5484d",
    "5xx": "#7f1d1d",
    "other": "#8a8f98",
}
LEGEND = [
    ("2xx", "2xx answered"),
    ("4xx", "4xx (400, 401, 404)"),
    ("429", "429 rate limited"),
    ("5xx", "5xx or dropped"),
]


def status_class(status: int | None) -> str:
    if status is None or status >= 500:
        return "5xx"
    if status == 429:
        return "429"
    if status >= 400:
        return "4xx"
    return "2xx" if 200 <= status < 300 else "other"


def write_html(report: dict[str, Any], path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")


def render(report: dict[str, Any]) -> str:
    cards = "\n".join(_card(s, report["limits"]) for s in report["scenarios"])
    return _PAGE.format(
        css=_CSS,
        header=_header(report),
        legend=_legend(),
        cards=cards,
    )


def _header(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    passed = sum(s["passed"] for s in scenarios)
    verdict = "PASS" if report["passed"] else "FAIL"
    chips = "".join(
        f'<a class="chip {"ok" if s["passed"] else "ko"}" href="#{escape(s["name"])}">'
        f"{'✓' if s['passed'] else '✗'} {escape(s['name'])}</a>"
        for s in scenarios
    )
    limits = report["limits"]
    return (
        f'<header><div class="verdict {verdict.lower()}">{verdict}</div><div>'
        f"<h1>frsync certify</h1><p class=muted><code>{escape(' '.join(report['command']))}</code>"
        f" · {passed}/{len(scenarios)} scenarios passed · {report['durationS']:.0f} s · limit "
        f"{limits['burst']} + {limits['rate']:g}/s per token</p><nav>{chips}</nav></div></header>"
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{COLOURS[key]}"></i>{label}</span>' for key, label in LEGEND
    )
    return (
        f'<div class="legend">{items}<span><b class="dash"></b>allowed by the rate limit</span>'
        '<span><b class="line"></b>requests sent (cumulative)</span></div>'
    )


def _card(scenario: dict[str, Any], limits: dict[str, Any]) -> str:
    ok = scenario["passed"]
    checks = "".join(_check(check) for check in scenario["evidence"]["checks"])
    return (
        f'<section class="card {"ok" if ok else "ko"}" id="{escape(scenario["name"])}">'
        f'<div class="top"><h2>{escape(scenario["name"])}</h2>'
        f'<span class="badge">{"PASS" if ok else "FAIL"}</span>'
        f'<span class="muted">{scenario["requests"]} requests · {scenario["durationS"]:.1f} s · '
        f"{scenario['fulfillmentRequests']} FRs · exit {_exits(scenario)}</span></div>"
        f'<p class="muted">The sandbox: {escape(scenario["sandboxDoes"])}. '
        f"Passes when: {escape(scenario['passesWhen'])}.</p>"
        f'<ul class="checks">{checks}</ul>'
        f"{timeline_svg(scenario, limits)}</section>"
    )


def _exits(scenario: dict[str, Any]) -> str:
    codes = ["killed" if code is None else str(code) for code in scenario["exitCodes"]]
    return ", ".join(codes)


def _check(check: dict[str, Any]) -> str:
    mark = "✓" if check["passed"] else "✗"
    offender = check.get("firstOffender")
    first = ""
    if offender and not check["passed"]:
        status = "dropped" if offender["status"] is None else offender["status"]
        first = (
            f'<div class="offender">first offender: journal #{offender["journalId"]} at '
            f"{offender['t']:.3f} s ({escape(offender['at'])}) — {escape(offender['method'])} "
            f"<code>{escape(offender['path'])}</code> → {status}</div>"
        )
    css = "pass" if check["passed"] else "fail"
    return (
        f'<li class="{css}"><b>{mark}</b> <span class="name">{escape(check["name"])}</span>'
        f" — {escape(check['detail'])}{first}</li>"
    )


def timeline_svg(scenario: dict[str, Any], limits: dict[str, Any]) -> str:
    points = scenario["timeline"]
    if not points:
        return '<p class="empty">The connector sent no request.</p>'
    span: float = max(max(float(p["t"]) + p["durationMs"] / 1000 for p in points), 0.2) * 1.04
    count = len(points)
    top = max(count, 1) * 1.08
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + plot_w * t / span

    def y(n: float) -> float:
        return TOP + PLOT_H * (1 - min(n, top) / top)

    parts = [_grid(span, top, x, y)]
    parts.append(_limit_line(limits, span, top, x, y))
    steps = " ".join(
        f"{x(p['t']):.1f},{y(i):.1f} {x(p['t']):.1f},{y(i + 1):.1f}" for i, p in enumerate(points)
    )
    parts.append(f'<polyline class="sent" points="{x(0):.1f},{y(0):.1f} {steps}"/>')
    offenders = {
        c["firstOffender"]["journalId"]
        for c in scenario["evidence"]["checks"]
        if c.get("firstOffender") and not c["passed"]
    }
    for i, p in enumerate(points):
        parts.append(_mark(p, x(p["t"]), y(i + 1), p["id"] in offenders))
        if p["id"] in offenders:
            anchor = "end" if x(p["t"]) > WIDTH / 2 else "start"
            dx = -10 if anchor == "end" else 10
            parts.append(
                f'<text class="offlabel" x="{x(p["t"]) + dx:.1f}" y="{y(i + 1) - 8:.1f}" '
                f'text-anchor="{anchor}">first offender #{p["id"]}</text>'
            )
    strip, lanes = _strip(points, x)
    parts.append(strip)
    height = TOP + PLOT_H + 24 + lanes * LANE_H + 18
    parts.append(
        f'<text class="axis" x="{WIDTH - RIGHT}" y="{height - 2}" text-anchor="end">'
        "seconds since the connector's first request · marks: requests sent, by answer</text>"
    )
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="requests over time for {escape(scenario["name"])}">{"".join(parts)}</svg>'
    )


def _grid(span: float, top: float, x: Any, y: Any) -> str:
    step = _nice_step(span)
    lines = []
    t = 0.0
    while t <= span:
        lines.append(
            f'<line class="grid" x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" y2="{TOP + PLOT_H}"/>'
            f'<text class="axis" x="{x(t):.1f}" y="{TOP + PLOT_H + 13}" text-anchor="middle">'
            f"{t:g} s</text>"
        )
        t = round(t + step, 6)
    n_step = _nice_step(top)
    n = 0.0
    while n <= top:
        lines.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y(n) + 4:.1f}" text-anchor="end">{n:g}</text>'
        )
        n = round(n + n_step, 6)
    lines.append(
        f'<line class="axisline" x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + PLOT_H}"/>'
    )
    return "".join(lines)


def _nice_step(extent: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if extent / step <= 8:
            return float(step)
    return 10000.0


def _limit_line(limits: dict[str, Any], span: float, top: float, x: Any, y: Any) -> str:
    burst, rate = limits["burst"], limits["rate"]
    label = f"allowed: {burst} + {rate:g}/s · t"
    if burst >= top:  # fewer requests than a burst: the line is above the chart
        return (
            f'<text class="limitlabel" x="{LEFT + 10}" y="{TOP + 12}">'
            f"{escape(label)} (above the chart: every request here fits in one burst)</text>"
        )
    end = min(span, max(0.0, (top - burst) / rate))
    points = f"{x(0):.1f},{y(burst):.1f} {x(end):.1f},{y(burst + rate * end):.1f}"
    return (
        f'<polyline class="limit" points="{points}"/>'
        f'<line class="limit" x1="{LEFT + 10}" y1="{TOP + 8}" x2="{LEFT + 32}" y2="{TOP + 8}"/>'
        f'<text class="limitlabel" x="{LEFT + 38}" y="{TOP + 12}">{escape(label)}</text>'
    )


def _mark(point: dict[str, Any], cx: float, cy: float, offender: bool) -> str:
    colour = COLOURS[status_class(point["status"])]
    status = "dropped" if point["status"] is None else point["status"]
    title = (
        f"#{point['id']} {point['method']} {point['path']} → {status} at {point['t']:.3f} s "
        f"({point['durationMs']:.0f} ms)"
    )
    ring = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" class="ring"/>' if offender else ""
    return (
        f'{ring}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
        f"<title>{escape(title)}</title></circle>"
    )


def _strip(points: list[dict[str, Any]], x: Any) -> tuple[str, int]:
    """Each request as a bar from arrival to answer, stacked in lanes so overlaps show."""
    base = TOP + PLOT_H + 24
    lanes: list[float] = []  # when each lane is free again
    bars = []
    for p in points:
        start, end = p["t"], p["t"] + p["durationMs"] / 1000
        lane = next((i for i, free in enumerate(lanes) if free <= start), len(lanes))
        if lane == len(lanes):
            lanes.append(end)
        else:
            lanes[lane] = end
        lane = min(lane, MAX_LANES - 1)
        width = max(x(end) - x(start), 1.5)
        colour = COLOURS[status_class(p["status"])]
        bars.append(
            f'<rect x="{x(start):.1f}" y="{base + lane * LANE_H}" width="{width:.1f}" '
            f'height="{LANE_H - 1}" fill="{colour}"/>'
        )
    label = f'<text class="axis" x="{LEFT - 6}" y="{base + 8}" text-anchor="end">in flight</text>'
    return label + "".join(bars), min(max(len(lanes), 2), MAX_LANES)


_CSS = """
:root{--ok:#2f9e5b;--ko:#c62828;--ink:#1f2430;--muted:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif;color:var(--ink);background:#f6f7f9}
main{max-width:920px;margin:0 auto;padding:24px 16px 48px}
header{display:flex;gap:18px;align-items:center;margin-bottom:14px}
h1{font-size:22px;margin:0}h2{font-size:17px;margin:0}
.verdict{font-weight:800;font-size:22px;color:#fff;border-radius:10px;padding:14px 18px}
.verdict.pass{background:var(--ok)}.verdict.fail{background:var(--ko)}
.muted{color:var(--muted)}code{font:12px ui-monospace,Menlo,monospace;background:#eef0f3;
padding:1px 4px;border-radius:4px}
nav{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}
.chip{font-size:12px;text-decoration:none;border-radius:999px;padding:2px 10px}
.chip.ok{background:#e3f4ea;color:#1d6b3d}.chip.ko{background:#fde8e8;color:#9b1c1c}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:var(--muted);margin:0 0 14px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px}
.legend b{display:inline-block;width:22px;height:0;margin-right:5px;vertical-align:middle}
.legend b.dash{border-top:2px dashed #64748b}.legend b.line{border-top:2px solid #334155}
.card{background:#fff;border:1px solid var(--line);border-left:6px solid var(--ok);
border-radius:10px;padding:14px 16px;margin:0 0 14px}.card.ko{border-left-color:var(--ko)}
.top{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.badge{font-weight:700;font-size:12px;color:#fff;background:var(--ok);border-radius:6px;
padding:1px 8px}.card.ko .badge{background:var(--ko)}
.card p{margin:6px 0}.checks{list-style:none;padding:0;margin:6px 0 8px}
.checks li{padding:2px 0}.checks li.pass b{color:var(--ok)}.checks li.fail b{color:var(--ko)}
.checks li.fail{color:#7f1d1d}.name{font-weight:600}
.offender{margin:2px 0 0 20px;font-size:12px;color:#7f1d1d}
svg{width:100%;height:auto;display:block}
.grid{stroke:#f0f1f4}.axisline{stroke:#cbd5e1}.axis{font-size:10px;fill:#94a3b8}
.limit{fill:none;stroke:#64748b;stroke-width:1.5;stroke-dasharray:5 4}
.limitlabel{font-size:11px;fill:#475569}
.limitlabel,.offlabel{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.sent{fill:none;stroke:#334155;stroke-width:1.2;opacity:.55}
.ring{fill:none;stroke:#111827;stroke-width:1.5}
.offlabel{font-size:11px;font-weight:600;fill:#111827}
.empty{color:var(--muted);font-style:italic}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>frsync certify report</title><style>{css}</style></head>
<body><main>{header}{legend}{cards}</main></body></html>
"""
