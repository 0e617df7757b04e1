"""`frsync certify -- COMMAND`: grade a connector against the sandbox's bad days (SPEC §11).

Exit codes: 0 every chosen scenario passed, 1 one failed, 2 usage error (unknown scenario,
no command, `--sandbox-url` without `--operator-token`, a sandbox that cannot be reached).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from frsync.certify import SCENARIOS, CertifyError, run_certification, scenario_names
from frsync.certify.html import write_html
from frsync.certify.report import write_report
from frsync.cli.common import OK, SOME_FAILED, USAGE

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `certify` to the `frsync` command line."""
    certify = subparsers.add_parser(
        "certify",
        help="grade a connector against the sandbox's scenarios (rate limit, errors, …)",
        description="Run COMMAND once per scenario against a fresh sandbox tenant "
        "(FRSYNC_BASE_URL, FRSYNC_TOKEN, FRSYNC_TOKEN_TYPE in its environment) and judge it "
        f"from the journal and the final state. Scenarios: {', '.join(SCENARIOS)}.",
        usage="frsync certify [options] -- COMMAND [ARGS ...]",
    )
    certify.add_argument("--sandbox-url", help="a running sandbox (default: start one)")
    certify.add_argument("--operator-token", help="that sandbox's operator token")
    certify.add_argument(
        "--scenario", action="append", metavar="NAME", help="run only this one (repeatable)"
    )
    certify.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="per run (default 120)"
    )
    certify.add_argument("--report", type=Path, metavar="R.json", help="write the JSON report")
    certify.add_argument("--html", type=Path, metavar="R.html", help="write the HTML report")
    certify.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    certify.set_defaults(func=run_certify)


def run_certify(args: argparse.Namespace) -> int:
    out, err = Console(highlight=False), Console(stderr=True, highlight=False, soft_wrap=True)
    if not out.is_terminal:  # a log or a CI page: room for the evidence on one line
        out.width = max(out.width, 140)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    problem = _usage_problem(args, command)
    if problem:
        err.print(f"[red]error:[/] {escape(problem)}")
        return USAGE
    try:
        with _sandbox(args) as (url, token), _progress(err) as progress:
            report = run_certification(
                base_url=url,
                operator_token=token,
                command=command,
                scenarios=args.scenario,
                timeout=args.timeout,
                progress=progress,
            )
    except CertifyError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        return USAGE
    out.print(verdict_table(report))
    _write(args, report, err)
    return OK if report["passed"] else SOME_FAILED


def _usage_problem(args: argparse.Namespace, command: list[str]) -> str | None:
    try:
        scenario_names(args.scenario)
    except ValueError as error:
        return str(error)
    if not command:
        return "no command to certify: frsync certify [options] -- COMMAND [ARGS ...]"
    if args.sandbox_url and not args.operator_token:
        return "--sandbox-url needs --operator-token (the sandbox's operator token)"
    if args.operator_token and not args.sandbox_url:
        return "--operator-token needs --sandbox-url"
    if args.timeout <= 0:
        return "--timeout must be a positive number of seconds"
    return None


@contextmanager
def _sandbox(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if args.sandbox_url:
        yield args.sandbox_url, args.operator_token
        return
    try:
        from frsync.testing import Sandbox, SandboxError
    except ImportError as error:
        raise CertifyError(
            f"starting a sandbox needs the server extra ({error.name}): "
            "pip install 'frsync[server]', or give --sandbox-url"
        ) from None
    try:
        sandbox = Sandbox()
    except SandboxError as error:
        raise CertifyError(f"cannot start a sandbox: {error}") from None
    with sandbox:
        yield sandbox.base_url, sandbox.operator_token


@contextmanager
def _progress(err: Console) -> Iterator[Any]:
    """Which scenarios run, for how long, and about how long is left (from each one's estimate)."""
    bars = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(bar_width=24),
        TimeElapsedColumn(),
        TextColumn("{task.fields[state]}"),
        console=err,
        transient=False,
    )
    tasks: dict[str, tuple[TaskID, float, float]] = {}
    lock, stop = threading.Lock(), threading.Event()

    def report(name: str, event: str, seconds: float) -> None:
        with lock:
            if event == "started":
                task = bars.add_task(name, total=max(seconds, 1.0), state=f"~{seconds:.0f} s")
                tasks[name] = (task, time.monotonic(), seconds)
            else:
                task = tasks.pop(name)[0]
                verdict = "[green]PASS[/]" if event == "passed" else "[red]FAIL[/]"
                bars.update(task, completed=bars.tasks[task].total, state=verdict)
                bars.stop_task(task)

    def tick() -> None:
        while not stop.wait(0.5):
            with lock:
                for task, started, estimate in tasks.values():
                    elapsed = time.monotonic() - started
                    left = max(0.0, estimate - elapsed)
                    state = f"running, ~{left:.0f} s left" if left else "running, past estimate"
                    bars.update(task, completed=min(elapsed, estimate * 0.99), state=state)

    ticker = threading.Thread(target=tick, daemon=True)
    with bars:
        ticker.start()
        try:
            yield report
        finally:
            stop.set()
            ticker.join()


def verdict_table(report: dict[str, Any]) -> Table:
    passed = sum(s["passed"] for s in report["scenarios"])
    title = (
        f"frsync certify: {passed}/{len(report['scenarios'])} scenarios passed "
        f"in {report['durationS']:.0f} s (limit {report['limits']['burst']} + "
        f"{report['limits']['rate']:g}/s)"
    )
    table = Table(title=title, show_lines=True)
    table.add_column("scenario", style="bold")
    table.add_column("verdict")
    table.add_column("evidence")
    for scenario in report["scenarios"]:
        verdict = "[green]PASS[/]" if scenario["passed"] else "[bold red]FAIL[/]"
        table.add_row(scenario["name"], verdict, _evidence(scenario))
    return table


def _evidence(scenario: dict[str, Any]) -> str:
    lines = [f"{scenario['requests']} requests in {scenario['durationS']:.1f} s"]
    for check in scenario["evidence"]["checks"]:
        mark = "[green]✓[/]" if check["passed"] else "[red]✗[/]"
        lines.append(f"{mark} {escape(check['detail'])}")
        offender = check["firstOffender"]
        if offender and not check["passed"]:
            status = offender["status"] if offender["status"] is not None else "dropped"
            lines.append(
                f"  first offender: journal #{offender['journalId']}, {offender['t']:.3f} s in "
                f"({offender['at']})\n  {offender['method']} {escape(offender['path'])} → {status}"
            )
    return "\n".join(lines)


def _write(args: argparse.Namespace, report: dict[str, Any], err: Console) -> None:
    if args.report is not None:
        write_report(report, args.report)
        err.print(f"JSON report: {escape(str(args.report))}")
    if args.html is not None:
        write_html(report, args.html)
        err.print(f"HTML report: {escape(str(args.html))}")
