"""The sandbox as certify sees it: its admin API (operator token) and the tenant's own reads.

Only the HTTP API (SPEC §9): certify never imports the server. The final state is read with
the tenant's *source* token, whose bucket the connector (on the account token) never spends,
through `frsync.client.Client`, which paces itself to that bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from frsync.certify.scenarios import Limits
from frsync.client import Client, error_from_response

JOURNAL_PAGE = 1000
HISTORY_PAGE = 100


class CertifyError(Exception):
    """The sandbox could not be reached, or its admin API refused a call."""


@dataclass(frozen=True)
class Tenant:
    account_id: int
    tokens: dict[str, str]
    token_ids: dict[str, int]
    fr_ids: list[int]


class SandboxAPI:
    def __init__(self, base_url: str, operator_token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"X-API-TOKEN": operator_token, "Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise CertifyError(f"cannot reach the sandbox at {self.base_url}: {error}") from None
        if response.status_code >= 400:  # read as the client reads every error answer
            raise CertifyError(f"{method} {path}: {error_from_response(response)}")
        return response

    def create_tenant(self, fulfillment_requests: int) -> Tenant:
        body = {"fulfillmentRequests": fulfillment_requests, "itemsPerRequest": 2}
        made = self._call("POST", "/__admin/tenants", json=body).json()
        token_ids = made.get("tokenIds")
        if not token_ids:
            raise CertifyError("the sandbox does not give tenants' token ids (SPEC §9): too old")
        return Tenant(made["accountId"], made["tokens"], token_ids, made["fulfillmentRequestIds"])

    def delete_tenant(self, tenant: Tenant) -> None:
        self._call("DELETE", f"/__admin/tenants/{tenant.account_id}")

    def add_faults(self, tenant: Tenant, rules: list[dict[str, Any]]) -> None:
        for rule in rules:
            self._call("POST", f"/__admin/tenants/{tenant.account_id}/faults", json=rule)

    def clear_faults(self, tenant: Tenant) -> None:
        self._call("DELETE", f"/__admin/tenants/{tenant.account_id}/faults")

    def journal(self, tenant: Tenant) -> list[dict[str, Any]]:
        """Every journal entry of the connector's token, newest first, page by page
        (`beforeId`): the tenant's journal holds the requests its revoked token was refused
        too (certify reads with the other tokens)."""
        path = f"/__admin/tenants/{tenant.account_id}/requests"
        params = {"tokenId": tenant.token_ids["account"], "limit": JOURNAL_PAGE}
        entries: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", path, params=params).json()
            entries += page
            if len(page) < JOURNAL_PAGE:
                return entries
            params["beforeId"] = page[-1]["id"]

    def limits(self) -> Limits:
        """The per-token bucket, from the `X-Auth-*` headers of one read by a probe tenant."""
        tenant = self.create_tenant(1)
        try:
            response = httpx.get(
                f"{self.base_url}/fulfillment-requests/count",
                headers={"X-API-TOKEN": tenant.tokens["source"]},
                timeout=30.0,
            )
            burst = int(response.headers["X-Auth-Pool-Size"])
            rate = float(response.headers["X-Auth-Replenished-Per-Second"])
        except (httpx.TransportError, KeyError, ValueError) as error:
            raise CertifyError(f"cannot read the sandbox's rate limit: {error!r}") from None
        finally:
            self.delete_tenant(tenant)
        return Limits(burst=burst, rate=rate)


def _reader(base_url: str, tenant: Tenant) -> Client:
    return Client(tenant.tokens["source"], base_url=base_url)


def final_state(base_url: str, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's FRs as the API shows them (camelCase JSON)."""
    with _reader(base_url, tenant) as client:
        return [msgspec.to_builtins(fr) for fr in client.iter_fulfillment_requests()]


def history(base_url: str, tenant: Tenant) -> dict[int, list[dict[str, Any]]]:
    """Each FR's accounting history, every page."""
    with _reader(base_url, tenant) as client:
        return {
            fr_id: [msgspec.to_builtins(e) for e in client.iter_accounting_history(fr_id)]
            for fr_id in tenant.fr_ids
        }
