"""`run_certification`: every chosen scenario, concurrently, each on its own fresh tenant.

Each tenant has its own tokens and so its own rate-limit bucket, so the scenarios do not slow
each other down: the wall time is about the longest scenario (rate-limit, bound by the limit).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from frsync.certify import admin, journal
from frsync.certify.admin import SandboxAPI, Tenant
from frsync.certify.process import connector_env, run_connector
from frsync.certify.report import Outcome, build_report
from frsync.certify.scenarios import SCENARIOS, Limits, Observed, Scenario, judge

# Called with (scenario name, "started" | "passed" | "failed", estimated seconds) as it goes.
Progress = Callable[[str, str, float], None]


def scenario_names(chosen: list[str] | None) -> list[str]:
    """The chosen scenarios in the table's order; raises ValueError naming an unknown one."""
    if not chosen:
        return list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {', '.join(unknown)} (known: {known})")
    return [name for name in SCENARIOS if name in chosen]


def as_argv(command: list[str] | str) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("no command to certify: give it after `--`")
    return argv


def run_certification(
    *,
    base_url: str,
    operator_token: str,
    command: list[str] | str,
    scenarios: list[str] | None = None,
    timeout: float = 120.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Certify `command` against the sandbox at `base_url`; returns the JSON report."""
    names = scenario_names(scenarios)
    argv = as_argv(command)
    started = time.monotonic()
    api = SandboxAPI(base_url, operator_token)
    try:
        limits = api.limits()
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [
                pool.submit(_certify_one, api, SCENARIOS[name], argv, timeout, limits, progress)
                for name in names
            ]
            outcomes = [future.result() for future in futures]
    finally:
        api.close()
    return build_report(outcomes, limits, argv, timeout, time.monotonic() - started)


def _certify_one(
    api: SandboxAPI,
    scenario: Scenario,
    argv: list[str],
    timeout: float,
    limits: Limits,
    progress: Progress | None,
) -> Outcome:
    if progress:
        progress(scenario.name, "started", scenario.estimate_s(limits))
    started = time.monotonic()
    tenant = api.create_tenant(scenario.fr_count(limits))
    try:
        api.add_faults(tenant, scenario.faults(tenant.fr_ids))
        outcome = _run_and_judge(api, scenario, tenant, argv, timeout, limits)
    finally:
        api.delete_tenant(tenant)
    outcome.duration_s = time.monotonic() - started
    if progress:
        progress(scenario.name, "passed" if outcome.passed else "failed", outcome.duration_s)
    return outcome


def _run_and_judge(
    api: SandboxAPI,
    scenario: Scenario,
    tenant: Tenant,
    argv: list[str],
    timeout: float,
    limits: Limits,
) -> Outcome:
    env = connector_env(api.base_url, tenant.tokens["account"])
    runs = [run_connector(argv, env, timeout)]
    before: dict[int, list[dict[str, Any]]] = {}
    for _ in range(1, scenario.runs):
        before = admin.history(api.base_url, tenant)
        runs.append(run_connector(argv, env, timeout))
    requests = journal.from_entries(api.journal(tenant))
    api.clear_faults(tenant)  # the reads below are certify's, not the scenario's
    observed = Observed(
        requests=requests,
        state=admin.final_state(api.base_url, tenant),
        fr_ids=tenant.fr_ids,
        exit_codes=[run.exit_code for run in runs],
        timed_out=any(run.timed_out for run in runs),
        timeout_s=timeout,
        limits=limits,
        history_before=before,
        history=admin.history(api.base_url, tenant) if scenario.runs > 1 else {},
    )
    checks = judge(scenario, observed)
    return Outcome(scenario, checks, requests, runs, 0.0, len(tenant.fr_ids))
