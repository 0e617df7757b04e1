"""Concurrent callers of one token against a real server over TCP: they never meet a 429 and
together reach >= 97 % of what the bucket allows.

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
    assert run.share >= 0.97, f"{run.admitted} admitted of {run.allowed:.1f} allowed"
