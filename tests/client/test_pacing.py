"""Concurrent callers of one token against a real server over TCP: they never meet a 429 and
together use most of what the bucket allows (>= 97 % is held on a simulated clock and measured
by the bench).

The server's bucket is 40 @ 20/s here so that a few seconds prove what 40 @ 2/s for 30 s
would (`python -m bench.client_pacing` runs that real-rate version). The share is measured
from the first request sent to the last, so a slow machine lowers neither side of it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from bench.client_pacing import Run, tasks, threads, two_clients

from tests.support import TOKENS

BURST, RATE, SECONDS = 40, 20.0, 6.0
SCENARIOS = {"threads": (threads, 8), "tasks": (tasks, 8), "two_clients": (two_clients, 4)}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_concurrent_callers_of_one_token_never_meet_a_429_and_use_the_whole_rate(
    tcp_server: Callable[..., str], scenario: str
) -> None:
    base_url = tcp_server(burst=BURST, rate=RATE)
    run_scenario, callers = SCENARIOS[scenario]
    run = run_scenario(
        base_url, TOKENS["account1"], Run(scenario, BURST, RATE, fr_id=221), callers, SECONDS
    )
    assert run.rate_limited == 0, f"{run.rate_limited} x 429"
    assert run.admitted > BURST + RATE  # it ran past the burst: the pace was tested
    # The >= 97 % of the contract is a figure of the pacing alone: it is held on a simulated
    # clock (tests/client/test_bucket.py) and measured at the real rate by bench/client_pacing.
    # Here, on a real server and a machine that may be saturated, a CPU-starved sender can
    # fall a little short of 20/s; the margin still tells a shared pace (most of the rate)
    # from per-caller pacing (an eighth of it) or callers queued one after another.
    assert run.share >= 0.8, f"{run.admitted} admitted of {run.allowed:.1f} allowed"
