"""The pytest plugin as an integrator meets it: a test file with no conftest, run by pytest in
a subprocess (pytester), against a sandbox it starts itself or one already running; and the
docs page's example, verbatim."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import frsync.client
from frsync.client import BadRequestError, RetryPolicy, UnauthorizedError
from frsync.testing import Sandbox, SandboxError
from frsync.testing._server import is_server

pytest_plugins = ["pytester"]
DOCS = Path(__file__).parents[2] / "docs" / "sandbox.md"

SAMPLE = """
import frsync.client


def test_tenant_is_isolated_and_the_journal_sees_it(frsync_sandbox, frsync_tenant):
    fr_id = frsync_tenant.fulfillment_request_ids[0]
    with frsync_tenant.client("source") as client:
        assert client.get_fulfillment_request(fr_id).source_id == frsync_tenant.source_id
        assert isinstance(client, frsync.client.Client)
    [entry] = frsync_sandbox.requests(path=f"/fulfillment-requests/{fr_id}")
    assert entry["status"] == 200 and entry["tokenType"] == "source"
    print("SANDBOX_URL", frsync_sandbox.base_url)


def test_forced_429_then_reset(frsync_sandbox, frsync_tenant):
    rule = frsync_sandbox.fault(match={"accountId": frsync_tenant.account_id},
                                action={"status": 429, "retryAfter": 1}, times=1)
    assert rule["remaining"] == 1
    with frsync_tenant.client() as client:
        client.sync_accounting(frsync_tenant.fulfillment_request_ids[1], accounting_synced=True)
    statuses = [e["status"] for e in frsync_sandbox.requests(method="PATCH", limit=2)]
    assert statuses[-1] == 429
    frsync_sandbox.clear_faults()
    frsync_sandbox.clear_requests()
    assert frsync_sandbox.requests() == []
"""

# A connector's ten tests as the author wrote them, each on its own tenant: 503 then
# success, 429s, a delay, a dropped connection, a timeout, a second tenant, a catch-all rule and
# the test after it. Waits are real (Retry-After: 1), as a connector's suite has them.
CONNECTOR_TESTS = """
import pytest
from frsync.client import APIConnectionError, NotFoundError, RetryPolicy, ServerError

QUICK = RetryPolicy(backoff_base=0.05, backoff_cap=0.2)


def patch_path(fr_id):
    return f"/fulfillment-requests/{fr_id}/accounting-sync"


def push(client, fr_id, bill):
    client.sync_accounting(fr_id, accounting_synced=True, external_accounting_id=bill)


def test_503_then_success(frsync_sandbox, frsync_tenant):
    print("SANDBOX_URL", frsync_sandbox.base_url)
    fr_id = frsync_tenant.fulfillment_request_ids[0]
    frsync_tenant.fault(match={"method": "PATCH"}, action={"status": 503, "retryAfter": 1},
                        times=1)
    with frsync_tenant.client(retry=QUICK) as client:
        push(client, fr_id, "B-1")
    frsync_tenant.assert_requests(method="PATCH", path=patch_path(fr_id), statuses=[503, 204])


def test_two_429s_then_success(frsync_tenant):
    fr_id = frsync_tenant.fulfillment_request_ids[1]
    frsync_tenant.fault(action={"status": 429, "retryAfter": 1}, times=2)
    with frsync_tenant.client(retry=QUICK) as client:
        push(client, fr_id, "B-2")
    frsync_tenant.assert_requests(method="PATCH", statuses=[429, 429, 204])


def test_a_delayed_answer_still_lands(frsync_tenant):
    fr_id = frsync_tenant.fulfillment_request_ids[2]
    frsync_tenant.fault(match={"method": "GET"}, action={"delayMs": 300}, times=1)
    with frsync_tenant.client() as client:
        assert client.get_fulfillment_request(fr_id).id == fr_id
    [entry] = frsync_tenant.requests(method="GET")
    assert entry["status"] == 200 and entry["durationMs"] >= 300


def test_a_dropped_connection_is_retried(frsync_tenant):
    fr_id = frsync_tenant.fulfillment_request_ids[3]
    frsync_tenant.fault(match={"method": "PATCH"}, action={"drop": True}, times=1)
    with frsync_tenant.client(retry=QUICK) as client:
        push(client, fr_id, "B-4")
    frsync_tenant.assert_requests(method="PATCH", statuses=[None, 204])


def test_a_timeout_is_a_connection_error(frsync_tenant):
    frsync_tenant.fault(match={"method": "GET"}, action={"delayMs": 5000})
    retry = RetryPolicy(max_retries=1, backoff_base=0.01)
    with frsync_tenant.client(timeout=0.5, retry=retry) as client:
        with pytest.raises(APIConnectionError):
            client.get_fulfillment_request(frsync_tenant.fulfillment_request_ids[0])


def test_a_second_tenant_sees_nothing_of_the_first(frsync_sandbox, frsync_tenant):
    other = frsync_sandbox.new_tenant(fulfillment_requests=1, items_per_request=1)
    try:
        with other.client() as client, pytest.raises(NotFoundError):
            client.get_fulfillment_request(frsync_tenant.fulfillment_request_ids[0])
        assert frsync_tenant.requests() == []
    finally:
        other.remove()


def test_catch_all_fault_of_this_tenant(frsync_tenant):
    frsync_tenant.fault(action={"status": 500})
    with frsync_tenant.client(retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(ServerError):
            client.get_fulfillment_request(frsync_tenant.fulfillment_request_ids[0])
    assert len(frsync_tenant.faults()) == 1


def test_after_the_catch_all_fault_this_test_sees_none(frsync_tenant):
    assert frsync_tenant.faults() == []
    with frsync_tenant.client(retry=RetryPolicy(max_retries=0)) as client:
        client.get_fulfillment_request(frsync_tenant.fulfillment_request_ids[0])
    frsync_tenant.assert_requests(statuses=[200])


def test_journal_names_the_token_and_keeps_the_body(frsync_tenant):
    fr_id = frsync_tenant.fulfillment_request_ids[4]
    with frsync_tenant.client("source") as client:
        push(client, fr_id, "B-9")
    [entry] = frsync_tenant.requests(method="PATCH")
    assert entry["tokenType"] == "source"
    assert entry["tokenId"] == frsync_tenant.token_ids["source"]
    assert entry["accountId"] == frsync_tenant.account_id
    assert entry["body"] == {"accountingSynced": True, "externalAccountingId": "B-9"}


def test_assert_requests_says_what_was_received(frsync_sandbox, frsync_tenant):
    with frsync_tenant.client() as client:
        client.get_fulfillment_request(frsync_tenant.fulfillment_request_ids[5])
    with pytest.raises(AssertionError, match=r"received \\[200\\]"):
        frsync_tenant.assert_requests(method="GET", statuses=[500])
    print("SANDBOX_URL", frsync_sandbox.base_url)
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRSYNC_SANDBOX_URL", "FRSYNC_OPERATOR_TOKEN", "FRSYNC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _docs_blocks(mark: str) -> list[str]:
    """The page's python blocks under `<!-- {mark} -->`, verbatim."""
    found = re.findall(rf"<!-- {mark} -->\n```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert found, f"docs/sandbox.md lost its {mark} blocks"
    return found


def _docs_example() -> str:
    return _docs_blocks("sandbox-example")[0]


@pytest.mark.slow
def test_sample_connector_tests_pass_with_a_self_started_sandbox(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(test_connector=SAMPLE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not any(path.name == "conftest.py" for path in pytester.path.iterdir())


@pytest.mark.slow
def test_ten_connector_tests_pass_serially_on_one_sandbox(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(test_connector=CONNECTOR_TESTS)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
    urls = re.findall(r"SANDBOX_URL (\S+)", result.stdout.str())
    assert len(urls) == 2 and len(set(urls)) == 1  # the first test's and the last one's


@pytest.mark.slow
def test_ten_connector_tests_share_one_sandbox_under_xdist(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(test_connector=CONNECTOR_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
    run_root = pytester.path / "runpytest-0"  # the run's --basetemp (pytester's first)
    started = (run_root / "frsync-sandbox.log").read_text().splitlines()
    assert len(started) == 1, started  # one server for both workers
    state = json.loads((run_root / "frsync-sandbox.json").read_text())
    assert sorted(state["workers"]) == ["gw0", "gw1"]
    assert state["server"] is None  # stopped by the last worker out
    pid = int(started[0].split(" pid ")[1].split()[0])
    assert not is_server(pid)


CRASHING_WORKERS = """
import os


def test_one_worker_dies(frsync_tenant):
    os._exit(1)


def test_the_other_dies_too(frsync_tenant):
    os._exit(1)
"""


@pytest.mark.slow
def test_a_sandbox_every_worker_crashed_on_is_stopped_by_the_controller(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(test_crash=CRASHING_WORKERS)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--max-worker-restart=0", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=2)
    run_root = pytester.path / "runpytest-0"
    [started] = (run_root / "frsync-sandbox.log").read_text().splitlines()
    assert json.loads((run_root / "frsync-sandbox.json").read_text())["server"] is None
    assert not is_server(int(started.split(" pid ")[1].split()[0]))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_docs_examples_pass_verbatim_in_a_new_project(
    pytester: pytest.Pytester, clean_env: None, workers: list[str]
) -> None:
    examples = _docs_blocks("sandbox-example")
    pytester.makepyfile(**{f"test_docs_{n}": code for n, code in enumerate(examples)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    tests = sum(code.count("\ndef test_") + code.startswith("def test_") for code in examples)
    result.assert_outcomes(passed=tests)
    assert not any(path.name == "conftest.py" for path in pytester.path.iterdir())


@pytest.mark.slow
def test_docs_script_without_pytest_runs_verbatim(tmp_path: Path, clean_env: None) -> None:
    for code in _docs_blocks("sandbox-script"):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_plugin_uses_a_running_sandbox_named_by_flags(
    pytester: pytest.Pytester, clean_env: None, running_sandbox: Sandbox
) -> None:
    pytester.makepyfile(test_connector=SAMPLE)
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--frsync-url", running_sandbox.base_url,
        "--frsync-operator-token", running_sandbox.operator_token,
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*SANDBOX_URL {running_sandbox.base_url}*"])


@pytest.mark.slow
def test_plugin_uses_a_running_sandbox_named_by_environment(
    pytester: pytest.Pytester,
    clean_env: None,
    running_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = running_sandbox.new_tenant(1, 1).account_id
    monkeypatch.setenv("FRSYNC_SANDBOX_URL", running_sandbox.base_url)
    monkeypatch.setenv("FRSYNC_OPERATOR_TOKEN", running_sandbox.operator_token)
    pytester.makepyfile(test_connector=_docs_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # It ran there: its tenant was made (and removed, journal and all) on this sandbox.
    assert running_sandbox.new_tenant(1, 1).account_id >= before + 2


def test_sandbox_without_pytest_starts_resets_and_stops(clean_env: None) -> None:
    with Sandbox() as sandbox:
        tenant = sandbox.new_tenant(fulfillment_requests=2, items_per_request=1)
        with tenant.client() as client:
            client.sync_accounting(tenant.fulfillment_request_ids[0], accounting_synced=True)
        assert sandbox.requests()[0]["status"] == 204
        sandbox.reset()
        assert sandbox.requests() == [] and sandbox.faults() == []
        with pytest.raises(SandboxError, match="404"):
            sandbox.delete_tenant(1)  # a demo account, not a tenant
        base = sandbox.base_url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)


def test_sandbox_refuses_bad_rules_with_the_servers_message(running_sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="400") as refused:
        running_sandbox.fault(action={"status": 418})
    assert refused.value.status == 400
    assert isinstance(refused.value.__cause__, BadRequestError)  # the client's one mapping
    assert refused.value.__cause__.field_errors
    with (
        Sandbox(running_sandbox.base_url, "wrong-token-wrong-token") as stranger,
        pytest.raises(
            SandboxError, match="401 The sandbox admin API takes an operator token"
        ) as unauthorized,
    ):
        stranger.reset()
    assert isinstance(unauthorized.value.__cause__, UnauthorizedError)


QUICK = RetryPolicy(backoff_base=0.01, backoff_cap=0.05)


def test_tenant_says_who_it_is(running_sandbox: Sandbox) -> None:
    tenant = running_sandbox.new_tenant(fulfillment_requests=2, items_per_request=1)
    assert set(tenant.token_ids) == set(tenant.tokens) == {"account", "source", "channel"}
    with tenant.client("channel") as client:
        client.get_fulfillment_request(tenant.fulfillment_request_ids[0])
    [entry] = tenant.requests()
    assert entry["tokenId"] == tenant.token_ids["channel"]
    assert entry["accountId"] == tenant.account_id
    tenant.remove()


def test_assert_requests_passes_on_the_exact_statuses_oldest_first(
    running_sandbox: Sandbox,
) -> None:
    tenant = running_sandbox.new_tenant(fulfillment_requests=1, items_per_request=1)
    fr_id = tenant.fulfillment_request_ids[0]
    path = f"/fulfillment-requests/{fr_id}/accounting-sync"
    tenant.fault(match={"method": "PATCH"}, action={"status": 503, "retryAfter": 0}, times=1)
    with tenant.client(retry=QUICK) as client:
        client.sync_accounting(fr_id, accounting_synced=True)
        client.get_fulfillment_request(fr_id)
    tenant.assert_requests(method="PATCH", path=path, statuses=[503, 204])
    tenant.assert_requests(statuses=[503, 204, 200])
    tenant.assert_requests(path="/fulfillment-requests/*", statuses=[503, 204, 200])

    with pytest.raises(AssertionError) as wrong:
        tenant.assert_requests(method="PATCH", path=path, statuses=[204])
    lines = str(wrong.value).splitlines()
    assert lines[0] == f"expected statuses [204] for PATCH {path}, received [503, 204]:"
    assert lines[1].endswith(f"PATCH {path} -> 503") and lines[2].endswith(f"PATCH {path} -> 204")
    assert lines[1].split()[0][:4].isdigit()  # each line starts with the time it was received

    with pytest.raises(AssertionError) as none:
        tenant.assert_requests(method="DELETE", statuses=[204])
    assert "received []" in str(none.value)
    assert "none matched; this tenant's last 3 request(s)" in str(none.value)
    assert f"GET /fulfillment-requests/{fr_id} -> 200" in str(none.value)
    tenant.remove()


def test_a_tenants_rules_meet_only_its_own_requests(running_sandbox: Sandbox) -> None:
    first, second = (running_sandbox.new_tenant(1, 1) for _ in range(2))
    first.fault(action={"status": 500})  # catch-all
    second_rule = second.fault(match={"method": "DELETE"}, action={"status": 409})
    with second.client(retry=QUICK) as client:
        client.get_fulfillment_request(second.fulfillment_request_ids[0])
    second.assert_requests(statuses=[200])
    first.clear_faults()
    assert first.faults() == [] and [rule["id"] for rule in second.faults()] == [second_rule["id"]]
    first.remove()
    second.remove()
    left = [rule for rule in running_sandbox.faults() if rule.get("accountId") == second.account_id]
    assert left == []  # removing a tenant takes its rules with it
    with pytest.raises(SandboxError, match="404"):
        second.requests()


@pytest.mark.slow
def test_tenant_journal_pages_past_a_thousand_entries(running_sandbox: Sandbox) -> None:
    tenant = running_sandbox.new_tenant(fulfillment_requests=1, items_per_request=1)
    tenant.fault(action={"status": 404})  # answered before the bucket: no rate limit in the way
    headers = {"X-API-TOKEN": tenant.tokens["account"]}
    with httpx.Client(base_url=running_sandbox.base_url, headers=headers) as http:
        for _ in range(1_005):
            http.get(f"/fulfillment-requests/{tenant.fulfillment_request_ids[0]}")
    everything = tenant.requests(limit=None)
    ids = [entry["id"] for entry in everything]
    assert len(ids) >= 1_000 and ids == sorted(set(ids), reverse=True)  # newest first, once each
    assert tenant.requests(limit=1_001) == everything[:1_001]
    assert len(tenant.requests()) == 100  # the admin API's own default page
    tenant.remove()


@pytest.mark.skipif(
    not hasattr(frsync.client, "AsyncClient"), reason="AsyncClient arrives with the client branch"
)
async def test_tenant_async_client_is_an_async_client_on_the_sandbox(
    running_sandbox: Sandbox,
) -> None:
    tenant = running_sandbox.new_tenant(fulfillment_requests=1, items_per_request=1)
    fr_id = tenant.fulfillment_request_ids[0]
    async with tenant.async_client("source", timeout=10.0) as client:
        assert isinstance(client, frsync.client.AsyncClient)
        assert (await client.get_fulfillment_request(fr_id)).id == fr_id
    tenant.assert_requests(method="GET", statuses=[200])
    tenant.remove()


def test_testing_package_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, frsync.testing, frsync.testing.plugin\n"
        "server = ('starlette', 'uvicorn', 'asyncpg', 'sqlalchemy', 'frsync.api', 'frsync.store',"
        " 'frsync.sandbox', 'frsync.domain')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(server))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
