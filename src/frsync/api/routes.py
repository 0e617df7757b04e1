"""The HTTP routes. Thin: parse, call the store or the domain, shape the answer."""

from __future__ import annotations

from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from frsync.api import metrics as metrics_text
from frsync.api.auth import authenticated
from frsync.api.body import check_json_content_type, decode_patch, read_body
from frsync.api.call import NO_CONTENT, Answer, ApiCall, FrRoutes
from frsync.api.params import parse_fr_query, parse_history_query, parse_int
from frsync.domain import AccountingPlan, Principal
from frsync.errors import NotFound, StoreBusy
from frsync.models import now_ms
from frsync.store import Audit, Store

_HERE = Path(__file__).parent
OPENAPI_DOCUMENT = (_HERE / "openapi.json").read_bytes()
_encode = msgspec.json.Encoder().encode
FR_ID = "fulfillmentRequestId"


def _store(call: ApiCall) -> Store:
    store: Store = call.app.state.store
    return store


def _json(value: object) -> Answer:
    return Answer(200, _encode(value), b"application/json")


@authenticated
async def sync_accounting(call: ApiCall, principal: Principal) -> Answer:
    """Record the result of pushing a fulfillment request into the books."""
    fr_id = parse_int(call.path_params[FR_ID], FR_ID)
    check_json_content_type(call)
    settings = call.app.state.settings
    body = await read_body(call, settings.max_body_bytes, settings.request_read_timeout)
    patch = decode_patch(body)
    now = now_ms()
    audit = Audit(principal.token_id, principal.token_type, call.scope["state"]["request_id"], now)
    await _store(call).sync_accounting(fr_id, AccountingPlan(principal, patch, now), audit)
    return NO_CONTENT


@authenticated
async def get_fulfillment_request(call: ApiCall, principal: Principal) -> Answer:
    fr_id = parse_int(call.path_params[FR_ID], FR_ID)
    fr = await _store(call).get_fulfillment_request(fr_id, principal)
    if fr is None:
        raise NotFound("Fulfillment request not found.")
    return _json(fr)


@authenticated
async def accounting_history(call: ApiCall, principal: Principal) -> Answer:
    fr_id = parse_int(call.path_params[FR_ID], FR_ID)
    page = parse_history_query(call.query_params)
    entries = await _store(call).accounting_history(fr_id, principal, **page)
    if entries is None:
        raise NotFound("Fulfillment request not found.")
    return _json(entries)


@authenticated
async def list_fulfillment_requests(call: ApiCall, principal: Principal) -> Answer:
    query = parse_fr_query(call.query_params)
    return _json(await _store(call).list_fulfillment_requests(principal, query))


@authenticated
async def count_fulfillment_requests(call: ApiCall, principal: Principal) -> Answer:
    query = parse_fr_query(call.query_params)
    return _json({"count": await _store(call).count_fulfillment_requests(principal, query)})


def _app_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _response(value: object, status: int = 200) -> Response:
    return Response(_encode(value), status, media_type="application/json")


async def healthz(request: Request) -> Response:
    return _response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the store answers; 'degraded' when rate limits run on local buckets."""
    try:
        await _app_store(request).ping()
        store_ok = True
    except StoreBusy:
        store_ok = False
    limiter = await request.app.state.limiter.status()
    status = "ok" if store_ok and limiter == "ok" else "degraded" if store_ok else "unavailable"
    body = {"status": status, "store": "ok" if store_ok else "unavailable", "rateLimit": limiter}
    return _response(body, 200 if store_ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text format; counters summed over every worker process."""
    board: metrics_text.Metrics = request.app.state.metrics
    await board.refresh_gauges(_app_store(request), request.app.state.limiter)
    body = metrics_text.render(board.collect())
    return Response(body, media_type=metrics_text.CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    return Response(OPENAPI_DOCUMENT, media_type="application/json")


FR_PATH = "/fulfillment-requests/{fulfillmentRequestId}"
# Served by `FrRoutes` (api/call.py), in this order: the exact paths first.
FR_ROUTES = FrRoutes(
    [
        ("PATCH", f"{FR_PATH}/accounting-sync", sync_accounting),
        ("GET", f"{FR_PATH}/accounting-sync/history", accounting_history),
        ("GET", "/fulfillment-requests/count", count_fulfillment_requests),
        ("GET", "/fulfillment-requests", list_fulfillment_requests),
        ("GET", FR_PATH, get_fulfillment_request),
    ]
)
ROUTES = [
    *FR_ROUTES.routes,
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
