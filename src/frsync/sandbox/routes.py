"""The /__admin routes: operator token only, not rate limited, JSON in and out. Thin: parse,
call the sandbox store, shape the answer. `/__admin/tenants/{accountId}/…` routes act on one
live tenant's rules and journal only (any other account: 404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from frsync.api.body import check_json_content_type, decode_json, read_body
from frsync.api.params import parse_int
from frsync.errors import FieldError, InvalidRequest, NotFound, Unauthenticated
from frsync.sandbox import admin
from frsync.sandbox.journal import entry_json
from frsync.sandbox.rules import rule_from_store
from frsync.sandbox.store import SandboxStore

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


TenantEndpoint = Callable[[Request, int | None], Awaitable[Response]]


def of_tenant(handler: TenantEndpoint) -> Endpoint:
    """Route wrapper for /__admin/tenants/{accountId}/…: the operator, and a live tenant."""

    @operator_only
    async def route(request: Request) -> Response:
        account_id = parse_int(request.path_params["accountId"], "accountId")
        if not await _store(request).is_tenant(account_id):
            raise NotFound(f"Account {account_id} is not a live sandbox tenant.")
        return await handler(request, account_id)

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
    if not raw:  # whitespace is a body, and not JSON: refused below
        if required:
            raise InvalidRequest("A JSON body is required.", [FieldError("", "missing body")])
        return {}  # no body: every field takes its default (a JSON `null` is refused)
    check_json_content_type(request)
    return decode_json(raw)


@operator_only
async def reset(request: Request) -> Response:
    """Put the sandbox back as the last load or demo left it."""
    state = request.app.state
    await admin.reset(state.sandbox_store, state.limiter, state.sandbox_purger)
    return _no_content()


@operator_only
async def create_tenant(request: Request) -> Response:
    """A fresh account with FRs, items and a token of each type."""
    frs, items = admin.tenant_plan(await _body(request, required=False))
    tenant = await admin.create_tenant(_store(request), frs, items)
    return _json(tenant.to_json(), 201)


@operator_only
async def delete_tenant(request: Request) -> Response:
    """Remove a tenant, its tokens, rules and journal (again: still 204)."""
    account_id = parse_int(request.path_params["accountId"], "accountId")
    if await _store(request).delete_tenant(account_id) is None:
        raise NotFound(f"Account {account_id} is not a sandbox tenant.")
    return _no_content()


async def _add_fault(request: Request, tenant: int | None) -> Response:
    rule = await admin.add_rule(_store(request), await _body(request, required=True), tenant)
    return _json(rule.to_json(), 201)


async def _list_faults(request: Request, tenant: int | None) -> Response:
    rules = await _store(request).list_rules(admin.rule_filter(request.query_params, tenant))
    return _json([rule_from_store(rule).to_json() for rule in rules])


async def _delete_fault(request: Request, tenant: int | None) -> Response:
    rule_id = parse_int(request.path_params["faultId"], "faultId")
    if not await _store(request).delete_rule(rule_id, tenant):
        raise NotFound(f"There is no fault rule {rule_id} here.")
    return _no_content()


async def _clear_faults(request: Request, tenant: int | None) -> Response:
    await _store(request).clear_rules(tenant)
    return _no_content()


async def _list_requests(request: Request, tenant: int | None) -> Response:
    where = admin.journal_filter(request.query_params, tenant)
    return _json([entry_json(row) for row in await _store(request).journal(where)])


async def _clear_requests(request: Request, tenant: int | None) -> Response:
    await _store(request).clear_journal(tenant)
    return _no_content()


def _global(handler: TenantEndpoint) -> Endpoint:
    async def route(request: Request) -> Response:
        return await handler(request, None)

    route.__doc__ = handler.__doc__
    return operator_only(route)


_TENANT = "/__admin/tenants/{accountId}"
ADMIN_ROUTES = [
    Route("/__admin/reset", reset, methods=["POST"]),
    Route("/__admin/tenants", create_tenant, methods=["POST"]),
    Route(_TENANT, delete_tenant, methods=["DELETE"]),
    Route("/__admin/faults", _global(_add_fault), methods=["POST"]),
    Route("/__admin/faults", _global(_list_faults), methods=["GET"]),
    Route("/__admin/faults", _global(_clear_faults), methods=["DELETE"]),
    Route("/__admin/faults/{faultId}", _global(_delete_fault), methods=["DELETE"]),
    Route("/__admin/requests", _global(_list_requests), methods=["GET"]),
    Route("/__admin/requests", _global(_clear_requests), methods=["DELETE"]),
    Route(f"{_TENANT}/faults", of_tenant(_add_fault), methods=["POST"]),
    Route(f"{_TENANT}/faults", of_tenant(_list_faults), methods=["GET"]),
    Route(f"{_TENANT}/faults", of_tenant(_clear_faults), methods=["DELETE"]),
    Route(f"{_TENANT}/faults/{{faultId}}", of_tenant(_delete_fault), methods=["DELETE"]),
    Route(f"{_TENANT}/requests", of_tenant(_list_requests), methods=["GET"]),
    Route(f"{_TENANT}/requests", of_tenant(_clear_requests), methods=["DELETE"]),
]
