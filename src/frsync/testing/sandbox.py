"""`Sandbox`: the admin API of a running `frsync serve --sandbox`, or one started for you."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from frsync.testing._admin import DEFAULT_LIMIT, AdminAPI, SandboxError, rule_body
from frsync.testing._server import ServerProcess
from frsync.testing.tenant import Tenant


class Sandbox:
    """A frsync sandbox: `Sandbox()` starts `frsync serve --sandbox` over a fresh copy of a
    template database (migrated, the demo data, an operator token; built once per installed
    frsync); `Sandbox(url, operator_token)` uses one that is already running."""

    def __init__(
        self,
        url: str | None = None,
        operator_token: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self._server: ServerProcess | None = None
        if url is None:
            self._server = ServerProcess.start()
            url, operator_token = self._server.url, self._server.operator_token
        elif not operator_token:
            raise SandboxError("a running sandbox needs its operator token too")
        self.base_url = url.rstrip("/")
        self.operator_token: str = operator_token or ""
        self._admin = AdminAPI(self.base_url, self.operator_token, timeout=timeout)

    # -- admin API -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the demo data (or the last load): FRs, history, buckets; every tenant,
        rule and journal entry removed — other suites' too, when the sandbox is shared."""
        self._admin.call("POST", "/__admin/reset")

    def fault(
        self,
        match: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
        times: int | None = None,
        probability: float | None = None,
        skip: int | None = None,
    ) -> dict[str, Any]:
        """Add a global rule (any account's requests can meet it); returns it with its `id`
        and `remaining`. A test should prefer `Tenant.fault`, which no one else meets."""
        body = rule_body(match, action, times, probability, skip)
        created: dict[str, Any] = self._admin.json("POST", "/__admin/faults", json=body)
        return created

    def faults(self) -> list[dict[str, Any]]:
        """Every rule, tenants' included (each with its `accountId`, null for a global one)."""
        listed: list[dict[str, Any]] = self._admin.json("GET", "/__admin/faults")
        return listed

    def delete_fault(self, fault_id: int) -> None:
        self._admin.call("DELETE", f"/__admin/faults/{fault_id}")

    def clear_faults(self) -> None:
        """Remove every rule, tenants' included."""
        self._admin.call("DELETE", "/__admin/faults")

    def requests(
        self, *, limit: int | None = DEFAULT_LIMIT, **filters: Any
    ) -> list[dict[str, Any]]:
        """The whole journal, newest first: filters `method`, `path` (prefix with `*`),
        `status`, `token_id`, `account_id`, `before_id`; `limit` past 1,000 pages on, None
        for every entry kept."""
        return self._admin.journal("/__admin/requests", limit, filters)

    def clear_requests(self) -> None:
        self._admin.call("DELETE", "/__admin/requests")

    def new_tenant(self, fulfillment_requests: int = 10, items_per_request: int = 2) -> Tenant:
        """A fresh account of its own: one source, one channel, that many unsynced FRs."""
        body = {"fulfillmentRequests": fulfillment_requests, "itemsPerRequest": items_per_request}
        return Tenant.from_answer(
            self._admin.json("POST", "/__admin/tenants", json=body), self._admin
        )

    def delete_tenant(self, account_id: int) -> None:
        self._admin.call("DELETE", f"/__admin/tenants/{account_id}")

    def certify(
        self, command: str | Sequence[str], scenarios: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Run `frsync certify` on this sandbox against the connector `command` (an argv list,
        or a string split as a shell splits words); returns the report (see
        `frsync.certify.run_certification`)."""
        from frsync.certify import run_certification

        report: dict[str, Any] = run_certification(
            base_url=self.base_url,
            operator_token=self.operator_token,
            command=command if isinstance(command, str) else list(command),
            scenarios=None if scenarios is None else list(scenarios),
        )
        return report

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the sandbox this object started (a running one is left alone)."""
        admin = getattr(self, "_admin", None)
        if admin is not None:
            admin.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
