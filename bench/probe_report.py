"""The second outside probe's five scenarios (issue 23), rerun; before → after figures
rewritten into RELIABILITY.md between `<!-- probe23:start -->` and `<!-- probe23:end -->`.

    python -m bench.probe_report                 # all five (~3 minutes)
    python -m bench.probe_report flood idle      # or some of: flood idle console csrf kill9

Loopback only, every scenario bounded in count and time. "Before" is the probe's own figure
from the issue; "after" is measured here:

- flood / idle: bench/connection_flood.py (1,200 connections from 127.0.0.1, slow-header or
  idle keep-alive, reopened when closed, 30 s; probes from 127.0.0.2 every 0.1 s);
- console: a channel token's console session reading `/console/errors?message=…` flat out
  for 10 s, then 200 sign-ins with that token, on a 1-worker `frsync serve` (SQLite);
- csrf: Chromium opens a page on another port that plants `frsync_console_signin` and
  auto-posts the sign-in form with the attacker's token;
- kill9: `frsync serve --workers 2`, SIGKILL to the supervisor, time until both workers are
  gone, then a new `serve` on the same port.
"""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from tests.console.test_console_signin_csrf import _ATTACK
from tests.faults.harness import cmdline
from tests.ops.conftest import FRSYNC, ServeProcess, env_for, load_with_cli, serve
from tests.ops.test_supervisor_crash import _alive, _children
from tests.support import BASIC_FIXTURE, TOKENS, wait_ready

from bench.connection_flood import flood, passed

RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
START, END = "<!-- probe23:start -->", "<!-- probe23:end -->"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHROMIUM = "/usr/bin/chromium"
Row = tuple[str, str, str, str]  # scenario, before, after, verdict


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def flood_row(mode: str) -> Row:
    result = flood(mode, 30.0)
    before = {
        "slow": "1,200 slow-header connections (8,275 opened in 30 s): `/healthz` answered 3 of 44",
        "idle": "1,200 idle keep-alive connections: `/healthz` answered 2 of 32",
    }[mode]
    answered = len(result.latencies)
    after = (
        f"{result.connections:,} {mode} connections from 127.0.0.1 ({result.opened:,} opened in "
        f"{result.seconds:g} s): probes from 127.0.0.2 answered {answered} of "
        f"{result.attempts}, p99 {result.percentile(0.99) * 1000:.0f} ms, max "
        f"{max(result.latencies, default=0) * 1000:.0f} ms"
    )
    name = "connection flood" if mode == "slow" else "idle keep-alive flood"
    return name, before, after, _verdict(passed(result))


def _signed_in_client(base: str, token: str) -> tuple[httpx.Client, int]:
    client = httpx.Client(base_url=base, timeout=10)
    form = client.get("/console")
    found = CSRF.search(form.text)
    assert found, form.text
    answer = client.post("/console/sign-in", data={"csrf": found.group(1), "token": token})
    return client, answer.status_code


def console_row() -> Row:
    token = TOKENS["channel20"]
    with tempfile.TemporaryDirectory(prefix="frsync-probe-") as scratch:
        workdir = Path(scratch)
        load_with_cli(env_for(workdir), workdir, BASIC_FIXTURE)
        with serve(workdir, log_requests="false") as server:
            client, status = _signed_in_client(server.base, token)
            counts = {200: 0, 429: 0, "other": 0}
            started = time.monotonic()
            try:
                while time.monotonic() - started < 10:
                    code = client.get("/console/errors", params={"message": "x"}).status_code
                    counts[code if code in counts else "other"] += 1
            finally:
                client.close()
            elapsed = time.monotonic() - started
            time.sleep(25)  # let the bucket fill again (40 at 2/s)
            sign_ins: dict[int, int] = {}
            for _ in range(200):
                client, code = _signed_in_client(server.base, token)
                client.close()
                sign_ins[code] = sign_ins.get(code, 0) + 1
        with sqlite3.connect(workdir / "frsync.db") as db:
            (rows,) = db.execute(
                "SELECT COUNT(*) FROM console_sessions AS s JOIN api_tokens AS t"
                " ON t.id = s.token_id WHERE t.token_type = 'channel' AND t.scope_id = 20"
            ).fetchone()
    rate = counts[200] / elapsed
    after = (
        f"signed in ({status}); `/console/errors?message=x` flat out for {elapsed:.1f} s: "
        f"{counts[200]} answered ({rate:.1f}/s), {counts[429]} × 429 (over-limit page), "
        f"{counts['other']} other; then 200 sign-ins with the token: "
        f"{', '.join(f'{n} × {c}' for c, n in sorted(sign_ins.items()))}; live sessions "
        f"of the token: {rows}"
    )
    ok = counts["other"] == 0 and counts[200] <= 40 + 2 * elapsed + 2 and rows <= 10
    before = (
        "250 requests/s on `/console/errors?message=…` (API: 2/s); 5,000 sign-ins in 19 s: "
        "5,000 session rows, the bucket never charged"
    )
    return "console rate limit", before, after, _verdict(ok and 429 in sign_ins)


def csrf_row() -> Row:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="frsync-probe-") as scratch:
        workdir = Path(scratch)
        load_with_cli(env_for(workdir), workdir, BASIC_FIXTURE)
        with (
            serve(workdir, log_requests="false") as server,
            AttackSite(server.base) as site,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page()
                with page.expect_response(f"{server.base}/console/sign-in") as posted:
                    page.goto(site)
                status = posted.value.status
                page.goto(f"{server.base}/console")
                signed_in = page.get_by_role("button", name="Sign out").count() > 0
            finally:
                browser.close()
    after = (
        f"the forged sign-in answered {status}; Chromium signed in afterwards: "
        f"{'yes' if signed_in else 'no'}"
    )
    before = "Chromium ended up signed in as the attacker's channel"
    return "login CSRF (Chromium)", before, after, _verdict(not signed_in and status == 403)


class _Attack(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


class AttackSite:
    """A page on another port of this host that runs the login-CSRF attack."""

    def __init__(self, target: str) -> None:
        page = _ATTACK.format(target=target, token=TOKENS["channel40"],
                              cookie="frsync_console_signin")  # fmt: skip
        handler = type("Attack", (_Attack,), {"page": page.encode()})
        self.site = ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.site.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.site.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.site.shutdown()
        self.site.server_close()


def kill9_row() -> Row:
    with tempfile.TemporaryDirectory(prefix="frsync-probe-") as scratch:
        workdir = Path(scratch)
        env = {**env_for(workdir), "TMPDIR": str(workdir)}
        first = ServeProcess(env, workdir / "first.log", "--workers", "2")
        wait_ready(first.base)
        deadline = time.monotonic() + 30
        while len(_children(first.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = [pid for pid in _children(first.process.pid) if _alive(pid)]
        workers = [pid for pid in children if b"resource_tracker" not in cmdline(pid)]
        stale = list(workdir.glob("frsync-metrics-*"))
        first.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.process.wait(10)
        while any(_alive(pid) for pid in children) and time.monotonic() - killed < 30:
            time.sleep(0.01)
        gone_after = time.monotonic() - killed
        left = [pid for pid in children if _alive(pid)]
        for pid in left:  # never leave orphans behind, whatever the result
            subprocess.run(["kill", "-9", str(pid)], check=False)
        with (workdir / "second.log").open("wb") as sink:
            second = subprocess.Popen(
                [*FRSYNC, "serve", "--port", str(first.port), "--workers", "2"],
                env=env, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_ready(first.base)
            healthz = httpx.get(f"{first.base}/healthz", timeout=5).status_code
            swept = not any(path.exists() for path in stale)
        finally:
            second.send_signal(signal.SIGTERM)
            code = second.wait(30)
    after = (
        f"{len(workers)} workers (and multiprocessing's resource tracker) gone "
        f"{gone_after:.2f} s after the supervisor's SIGKILL "
        f"(left: {len(left)}); a new `serve --workers 2` on the same port answered "
        f"`/healthz` {healthz} and exited {code} at SIGTERM; the crashed run's metrics "
        f"directory {'removed' if swept else 'still there'}"
    )
    before = (
        "workers re-parented to PID 1 still answered `/healthz` after 13 s; a new `serve` on "
        "the port exited 3 (address in use); `/tmp/frsync-metrics-*` left behind"
    )
    ok = not left and gone_after < 1.0 + 0.5 and healthz == 200 and swept
    return "supervisor kill -9", before, after, _verdict(ok)


SCENARIOS: dict[str, Callable[[], Row]] = {
    "flood": lambda: flood_row("slow"),
    "idle": lambda: flood_row("idle"),
    "console": console_row,
    "csrf": csrf_row,
    "kill9": kill9_row,
}


def _section(rows: list[Row], names: list[str], seconds: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        f"Generated by `python -m bench.probe_report` (`make reliability`) on {now}: "
        f"{', '.join(names)}, {seconds / 60:.1f} min, on a 2-CPU machine shared with other "
        "runs (latencies are upper bounds). Before: the probe's figures (issue 23).",
        "",
        "| scenario | before | after | verdict |",
        "|---|---|---|---|",
        *(f"| {name} | {before} | {after} | {verdict} |" for name, before, after, verdict in rows),
        END,
    ]
    return "\n".join(lines)


def _write(section: str) -> None:
    text = RELIABILITY.read_text()
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text += f"\n## Probe scenarios, issue 23\n\n{section}\n\n{_COMMANDS}"
    RELIABILITY.write_text(text)


_COMMANDS = (
    "Each scenario is also a test: the flood and idle flood in `tests/faults/test_flood.py` "
    "(300 connections over a 40-connection share, every probe from 127.0.0.2 answered); the "
    "console's rate limit and session bound on SQLite and PostgreSQL in "
    "`tests/console/test_console_limits.py` (and in Chromium, "
    "`tests/console/test_console_limits_browser.py`); login CSRF over HTTP and in Chromium in "
    "`tests/console/test_console_signin_csrf.py`; the supervisor's kill -9 and a fresh "
    "`serve` on the same port in `tests/ops/test_supervisor_crash.py`.\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    rows = []
    for name in names:
        row = SCENARIOS[name]()
        print(" | ".join(row), flush=True)
        rows.append(row)
    _write(_section(rows, names, time.monotonic() - started))


if __name__ == "__main__":
    main()
