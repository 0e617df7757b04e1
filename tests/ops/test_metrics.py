"""`/metrics`: Prometheus text, labelled by route template, summed across worker processes."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from pathlib import Path

import httpx

from frsync.api.loop_lag import LoopLag
from frsync.api.metrics import Metrics, render
from frsync.config import Settings
from tests.conftest import client_for
from tests.support import TOKENS, free_port, running_app

SAMPLE = re.compile(r'^[a-z_]+(\{([a-zA-Z_]+="[^"\n]*",?)*\})? -?[0-9.e+Inf]+$')


def samples(text: str) -> dict[str, float]:
    """Every sample line, checked against the text format, by its name and labels."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        name, _, value = line.rpartition(" ")
        found[name] = float(value)
    return found


async def test_metrics_count_requests_by_route_template_and_status(settings: Settings) -> None:
    async with (
        running_app(replace(settings, burst=3)) as app,
        client_for(app, TOKENS["account1"]) as api,
    ):
        for fr_id in (221, 222, 223, 224):  # the fourth is over the burst of 3: 429
            await api.get(f"/fulfillment-requests/{fr_id}")
        await api.get("/no/such/path")
        scrape = await api.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(scrape.text)
    route = 'route="/fulfillment-requests/{fulfillmentRequestId}",method="GET"'
    assert found[f'frsync_http_requests_total{{{route},status="200"}}'] == 3
    assert found[f'frsync_http_requests_total{{{route},status="429"}}'] == 1
    assert found['frsync_http_requests_total{route="unmatched",method="GET",status="404"}'] == 1
    assert found["frsync_http_rate_limited_total"] == 1
    assert found["frsync_http_unavailable_total"] == 0
    assert found[f"frsync_http_request_duration_seconds_count{{{route}}}"] == 4
    assert found[f'frsync_http_request_duration_seconds_bucket{{{route},le="+Inf"}}'] == 4
    assert "/fulfillment-requests/221" not in scrape.text  # never a raw path
    assert found["frsync_workers"] == 1
    assert any(k.startswith("frsync_store_up{pid=") and v == 1 for k, v in found.items())
    assert any('state="ok"' in k and v == 1 for k, v in found.items())


async def test_a_dead_redis_shows_as_degraded_in_metrics(settings: Settings) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running_app(replace(settings, rate_limit_url=dead)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            found = samples((await anon.get("/metrics")).text)
    assert any('state="degraded"' in k and v == 1 for k, v in found.items())


async def _until_sampled(lag: LoopLag, past: int) -> None:
    """Until the sampler has recorded more than `past` wakeups (a hang guard, not a bound)."""
    for _ in range(100_000):
        if sum(lag.counts) > past:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the loop-lag sampler never woke")


async def test_a_blocked_event_loop_shows_in_metrics_as_its_longest_lag(settings: Settings) -> None:
    """The test holds the loop for 50 ms: the sampler, due 1 ms after its last wakeup, wakes
    at least 49 ms late however busy the machine (a busy one only makes it later)."""
    async with running_app(replace(settings, loop_lag_sample_ms=1.0)) as app:
        lag = app.state.metrics.loop_lag
        await _until_sampled(lag, 0)
        time.sleep(0.05)  # noqa: ASYNC251 -- on purpose: no other task of this loop runs meanwhile
        await _until_sampled(lag, sum(lag.counts))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            found = samples((await anon.get("/metrics")).text)
    assert found["frsync_event_loop_lag_seconds_max"] >= 0.049
    count = found["frsync_event_loop_lag_seconds_count"]
    assert found['frsync_event_loop_lag_seconds_bucket{le="0.025"}'] < count
    assert found['frsync_event_loop_lag_seconds_bucket{le="+Inf"}'] == count


async def test_without_the_setting_no_sampler_runs_and_no_lag_is_shown(settings: Settings) -> None:
    async with running_app(settings) as app:
        assert app.state.metrics.loop_lag is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            assert "event_loop" not in (await anon.get("/metrics")).text


def test_workers_numbers_are_summed_and_gauges_kept_per_process(tmp_path: Path) -> None:
    """Two processes' registries sharing a directory, as `serve --workers 2` sets up."""
    first, second = Metrics(str(tmp_path)), Metrics(str(tmp_path))
    second._file = tmp_path / "999999.msgpack"  # another pid: the same process plays both
    first.observe("/healthz", "GET", 200, 0.003)
    second.observe("/healthz", "GET", 200, 0.2)
    second.observe("/healthz", "GET", 503, 3.0)
    second.publish()
    snapshots = first.collect()
    assert len(snapshots) == 2
    found = samples(render(snapshots).decode())
    labels = 'route="/healthz",method="GET"'
    assert found[f'frsync_http_requests_total{{{labels},status="200"}}'] == 2
    assert found["frsync_http_unavailable_total"] == 1
    assert found[f'frsync_http_request_duration_seconds_bucket{{{labels},le="0.005"}}'] == 1
    assert found[f'frsync_http_request_duration_seconds_bucket{{{labels},le="0.25"}}'] == 2
    assert found[f'frsync_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}'] == 3
    assert found[f"frsync_http_request_duration_seconds_sum{{{labels}}}"] == 3.203
    assert len([k for k in found if k.startswith("frsync_store_up{")]) == 1  # one pid


def test_workers_loop_lag_is_pooled_with_the_longest_of_all(tmp_path: Path) -> None:
    first, second = Metrics(str(tmp_path)), Metrics(str(tmp_path))
    second._file = tmp_path / "999999.msgpack"
    first.loop_lag, second.loop_lag = LoopLag(), LoopLag()
    first.loop_lag.record(0.0004)
    second.loop_lag.record(0.0004)
    second.loop_lag.record(0.007)
    second.publish()
    found = samples(render(first.collect()).decode())
    assert found["frsync_event_loop_lag_seconds_count"] == 3
    assert found['frsync_event_loop_lag_seconds_bucket{le="0.001"}'] == 2
    assert found['frsync_event_loop_lag_seconds_bucket{le="0.005"}'] == 2
    assert found['frsync_event_loop_lag_seconds_bucket{le="0.01"}'] == 3
    assert found["frsync_event_loop_lag_seconds_max"] == 0.007
    assert found["frsync_event_loop_lag_seconds_sum"] == 0.0078
