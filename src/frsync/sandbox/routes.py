"""The /__admin routes: operator token only, not rate limited, JSON in and out. Thin: parse,
call the sandbox store, shape the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from frsync.api.body import check_json_content_type, read_body
from frsync.api.params import parse_int
from frsync.errors import FieldError, InvalidRequest, NotFound, Unauthenticated
from frsync.models import now_ms
from frsync.sandbox import admin
from frsync.sandbox.faults import rules_of
from frsync.sandbox.journal import entry_json
from frsync.sandbox.rules import parse_rule
from frsync.store.sandbox_base import SandboxStore

OPERATOR_ONLY = "The sandbox admin API takes an operator token in the X-API-TOKEN header."
MAX_ADMIN_BODY = 64 * 1024
_encode = msgspec.json.Encoder().encode
Endpoint = Callable[[Request], Awaitable[Response]]


def operator_only(handler: Endpoint) -> Endpoint:
    """Route wrapper: an operator token, or 401. No bucket is charged."""

    @wraps(handler)
    async def route(request: Request) -> Response:
        try:
            principal, _ = await request.app.state.gatekeeper.identify(request)
        except Unauthenticated:
            raise Unauthenticated(OPERATOR_ONLY) from None
        if not principal.is_operator:
            raise Unauthenticated(OPERATOR_ONLY)
        return await handler(request)

    return route


def _store(request: Request) -> SandboxStore:
    store: SandboxStore = request.app.state.sandbox_store
    return store


def _json(value: object, status: int = 200) -> Response:
    return Response(_encode(value), status, media_type="application/json")


def _no_content() -> Response:
    return Response(status_code=204)


async def _body(request: Request, *, required: bool) -> Any:
    raw = await read_body(request, MAX_ADMIN_BODY, request.app.state.settings.request_read_timeout)
    if not raw.strip():
        if required:
            raise InvalidRequest("A JSON body is required.", [FieldError("", "missing body")])
        return {}  # no body: every field takes its default (a JSON `null` is refused)
    check_json_content_type(request)
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest("The body is not valid JSON.", [FieldError("", "not JSON")]) from None


@operator_only
async def reset(request: Request) -> Response:
    """Put the sandbox back as the last load or demo left it."""
    await admin.reset(_store(request), request.app.state.limiter)
    return _no_content()


@operator_only
async def create_tenant(request: Request) -> Response:
    """A fresh account with FRs, items and a token of each type."""
    frs, items = admin.tenant_plan(await _body(request, required=False))
    tenant = await admin.create_tenant(_store(request), frs, items)
    return _json(tenant.to_json(), 201)


@operator_only
async def delete_tenant(request: Request) -> Response:
    """Remove a tenant and revoke its tokens (again: still 204)."""
    account_id = parse_int(request.path_params["accountId"], "accountId")
    if await _store(request).delete_tenant(account_id, now_ms()) is None:
        raise NotFound(f"Account {account_id} is not a sandbox tenant.")
    return _no_content()


@operator_only
async def add_fault(request: Request) -> Response:
    """Add a fault rule; it is checked after older ones."""
    rule = parse_rule(await _body(request, required=True))
    rule_id = await _store(request).add_rule(rule.stored(), rule.times, now_ms())
    body = rule.to_json() | {"id": rule_id, "remaining": rule.times}
    return _json(body, 201)


@operator_only
async def list_faults(request: Request) -> Response:
    return _json([rule.to_json() for rule in rules_of(await _store(request).rules())])


@operator_only
async def delete_fault(request: Request) -> Response:
    rule_id = parse_int(request.path_params["faultId"], "faultId")
    if not await _store(request).delete_rule(rule_id):
        raise NotFound(f"There is no fault rule {rule_id}.")
    return _no_content()


@operator_only
async def clear_faults(request: Request) -> Response:
    await _store(request).clear_rules()
    return _no_content()


@operator_only
async def list_requests(request: Request) -> Response:
    """The journal of FR-endpoint requests, newest first."""
    where = admin.journal_filter(request.query_params)
    return _json([entry_json(row) for row in await _store(request).journal(where)])


@operator_only
async def clear_requests(request: Request) -> Response:
    await _store(request).clear_journal()
    return _no_content()


ADMIN_ROUTES = [
    Route("/__admin/reset", reset, methods=["POST"]),
    Route("/__admin/tenants", create_tenant, methods=["POST"]),
    Route("/__admin/tenants/{accountId}", delete_tenant, methods=["DELETE"]),
    Route("/__admin/faults", add_fault, methods=["POST"]),
    Route("/__admin/faults", list_faults, methods=["GET"]),
    Route("/__admin/faults", clear_faults, methods=["DELETE"]),
    Route("/__admin/faults/{faultId}", delete_fault, methods=["DELETE"]),
    Route("/__admin/requests", list_requests, methods=["GET"]),
    Route("/__admin/requests", clear_requests, methods=["DELETE"]),
]
