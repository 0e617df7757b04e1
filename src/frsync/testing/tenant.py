"""`Tenant`: one isolated account in a sandbox, with its own fault rules and journal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from frsync.client import Client
from frsync.testing._admin import DEFAULT_LIMIT, AdminAPI, rule_body

if TYPE_CHECKING:
    # AsyncClient lands with the async client; until then this name is Any to mypy.
    from frsync.client import AsyncClient  # type: ignore[attr-defined, unused-ignore]

_SHOWN = 20  # requests an assert_requests failure lists at most


@dataclass
class Tenant:
    """An isolated account in the sandbox: one source, one channel, its fulfillment requests,
    a token of each type (`tokens`, with their ids in `token_ids`), and fault rules and a
    request journal of its own."""

    account_id: int
    source_id: int
    channel_id: int
    tokens: dict[str, str]
    token_ids: dict[str, int]
    fulfillment_request_ids: list[int]
    base_url: str
    _admin: AdminAPI = field(repr=False)

    @classmethod
    def from_answer(cls, made: dict[str, Any], admin: AdminAPI) -> Tenant:
        """From `POST /__admin/tenants`'s answer."""
        return cls(
            account_id=made["accountId"],
            source_id=made["sourceId"],
            channel_id=made["channelId"],
            tokens=dict(made["tokens"]),
            token_ids=dict(made.get("tokenIds", {})),
            fulfillment_request_ids=list(made["fulfillmentRequestIds"]),
            base_url=admin.base_url,
            _admin=admin,
        )

    @property
    def _path(self) -> str:
        return f"/__admin/tenants/{self.account_id}"

    # -- clients ---------------------------------------------------------------------------

    def client(self, token_type: str = "account", **options: Any) -> Client:  # noqa: S107
        """A `frsync.client.Client` on the sandbox with this tenant's token of `token_type`
        ("account", "source" or "channel"). Every other keyword goes to `Client` as it is:
        `timeout`, `transport`, `retry` (a `RetryPolicy`), `pace`, `clock`, `sleep`, `jitter`,
        `on_retry` (see docs/sandbox.md); `base_url` is the sandbox's unless given."""
        return Client(self._token(token_type), **{"base_url": self.base_url, **options})

    def async_client(self, token_type: str = "account", **options: Any) -> AsyncClient:  # noqa: S107
        """The same as `client()` for `frsync.client.AsyncClient` (same options)."""
        from frsync.client import AsyncClient  # type: ignore[attr-defined, unused-ignore]

        made: AsyncClient = AsyncClient(
            self._token(token_type), **{"base_url": self.base_url, **options}
        )
        return made

    def _token(self, token_type: str) -> str:
        if token_type not in self.tokens:
            raise ValueError(f"token_type must be one of {', '.join(self.tokens)}")
        return self.tokens[token_type]

    # -- the tenant's own fault rules and journal ---------------------------------------------

    def fault(
        self,
        match: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
        times: int | None = None,
        probability: float | None = None,
        skip: int | None = None,
    ) -> dict[str, Any]:
        """Add a rule that only this tenant's requests can meet (any of its tokens); returns
        it with its `id` and `remaining`. `match={}` (the default) matches all of them."""
        body = rule_body(match, action, times, probability, skip)
        rule: dict[str, Any] = self._admin.json("POST", f"{self._path}/faults", json=body)
        return rule

    def faults(self) -> list[dict[str, Any]]:
        """This tenant's rules, in the order they are checked."""
        rules: list[dict[str, Any]] = self._admin.json("GET", f"{self._path}/faults")
        return rules

    def clear_faults(self) -> None:
        """Remove this tenant's rules (and no one else's)."""
        self._admin.call("DELETE", f"{self._path}/faults")

    def requests(
        self, *, limit: int | None = DEFAULT_LIMIT, **filters: Any
    ) -> list[dict[str, Any]]:
        """This tenant's journal, newest first: filters `method`, `path` (prefix with `*`),
        `status`, `token_id`, `before_id`; `limit` past 1,000 pages on, None for all kept."""
        return self._admin.journal(f"{self._path}/requests", limit, filters)

    def clear_requests(self) -> None:
        """Empty this tenant's journal (and no one else's)."""
        self._admin.call("DELETE", f"{self._path}/requests")

    def assert_requests(
        self, method: str | None = None, path: str | None = None, *, statuses: Sequence[int | None]
    ) -> None:
        """The statuses of this tenant's requests matching `method` and `path`, oldest first,
        are exactly `statuses` (None: a dropped connection); else AssertionError listing what
        was received."""
        entries = self.requests(method=method, path=path, limit=None)[::-1]
        received = [entry["status"] for entry in entries]
        if received == list(statuses):
            return
        what = " ".join(part for part in (method, path) if part) or "any request"
        lines = [f"expected statuses {list(statuses)} for {what}, received {received}:"]
        lines += [_describe(entry) for entry in entries[-_SHOWN:]]
        if not entries:
            others = self.requests(limit=_SHOWN)[::-1]
            lines.append(f"  (none matched; this tenant's last {len(others)} request(s):)")
            lines += [_describe(entry) for entry in others]
        elif len(entries) > _SHOWN:
            lines.insert(1, f"  (the last {_SHOWN} of {len(entries)})")
        raise AssertionError("\n".join(lines))

    def remove(self) -> None:
        """Remove the tenant with its tokens, rules and journal (again: no error)."""
        self._admin.call("DELETE", self._path)


def _describe(entry: dict[str, Any]) -> str:
    query = f"?{entry['query']}" if entry.get("query") else ""
    status = "dropped" if entry.get("status") is None else entry["status"]
    return f"  {entry.get('at')}  {entry.get('method')} {entry.get('path')}{query} -> {status}"
