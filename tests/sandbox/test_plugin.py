"""The pytest plugin as an integrator meets it: a test file with no conftest, run by pytest in
a subprocess (pytester), against a sandbox it starts itself or one already running; and the
docs page's example, verbatim."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frsync.testing import Sandbox, SandboxError

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


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRSYNC_SANDBOX_URL", "FRSYNC_OPERATOR_TOKEN", "FRSYNC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _docs_example() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- sandbox-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/sandbox.md lost its example"
    return match.group(1)


@pytest.mark.slow
def test_sample_connector_tests_pass_with_a_self_started_sandbox(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(test_connector=SAMPLE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not any(path.name == "conftest.py" for path in pytester.path.iterdir())


@pytest.mark.slow
def test_docs_example_passes_verbatim(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_connector=_docs_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


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
    monkeypatch.setenv("FRSYNC_SANDBOX_URL", running_sandbox.base_url)
    monkeypatch.setenv("FRSYNC_OPERATOR_TOKEN", running_sandbox.operator_token)
    pytester.makepyfile(test_connector=_docs_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # It ran there: its tenant was made (and removed) on this sandbox.
    assert running_sandbox.requests(method="PATCH", limit=1)


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
    with pytest.raises(SandboxError, match="400"):
        running_sandbox.fault(action={"status": 418})
    with (
        Sandbox(running_sandbox.base_url, "wrong-token-wrong-token") as stranger,
        pytest.raises(SandboxError, match="401 The sandbox admin API takes an operator token"),
    ):
        stranger.reset()


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
