"""The sandbox admin API over HTTP, shared by `Sandbox` and `Tenant`: one call that reads error
answers through the client's one mapping, fault-rule bodies, and journal paging."""

from __future__ import annotations

from typing import Any

import httpx

from frsync.client import error_from_response

MAX_PAGE = 1_000  # the admin API's largest journal page (SPEC §9)
DEFAULT_LIMIT = 100  # the admin API's own default page
# The admin API's filter names, accepted in Python spelling too.
_FILTER_NAMES = {"token_id": "tokenId", "account_id": "accountId", "before_id": "beforeId"}


class SandboxError(Exception):
    """The sandbox could not be started, or its admin API refused a call.

    For a refused call, `status` is the answer's status and `__cause__` the client's own
    error for it (`frsync.client.APIStatusError`, with its problem body and request id)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AdminAPI:
    """An HTTP session on a sandbox's `/__admin` paths with its operator token."""

    def __init__(self, base_url: str, operator_token: str, *, timeout: float) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"X-API-TOKEN": operator_token, "Accept": "application/json"},
        )

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as failure:
            raise SandboxError(f"{method} {self.base_url}{path}: {failure!r}") from failure
        if response.status_code >= 400:
            error = error_from_response(response)
            raise SandboxError(f"{method} {path}: {error}", status=error.status) from error
        return response

    def json(self, method: str, path: str, **options: Any) -> Any:
        return self.call(method, path, **options).json()

    def journal(
        self, path: str, limit: int | None, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Entries of the journal at `path`, newest first: up to `limit` (every one kept when
        None), following `beforeId` pages past the admin API's 1,000 a page."""
        params = {_FILTER_NAMES.get(k, k): str(v) for k, v in filters.items() if v is not None}
        if limit is not None and limit <= MAX_PAGE:
            return list(self.json("GET", path, params={**params, "limit": str(limit)}))
        entries: list[dict[str, Any]] = []
        while limit is None or len(entries) < limit:
            page_size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(entries))
            page = self.json("GET", path, params={**params, "limit": str(page_size)})
            entries.extend(page)
            if len(page) < page_size:
                break
            params["beforeId"] = str(page[-1]["id"])
        return entries

    def close(self) -> None:
        self._http.close()


def rule_body(
    match: dict[str, Any] | None,
    action: dict[str, Any] | None,
    times: int | None,
    probability: float | None,
    skip: int | None,
) -> dict[str, Any]:
    """A fault rule as the admin API takes it; the optional members only when given."""
    if action is None:
        raise TypeError("fault() needs an action, e.g. action={'status': 503}")
    rule: dict[str, Any] = {"match": match or {}, "action": action}
    for name, value in (("times", times), ("probability", probability), ("skip", skip)):
        if value is not None:
            rule[name] = value
    return rule
