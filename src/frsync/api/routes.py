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
from frsync.api.params import parse_fr_query, parse_history_query, parse_int
from frsync.domain import AccountingPlan, Principal
from frsync.errors import NotFound, StoreBusy
from frsync.models import now_ms
from frsync.store import Audit, Store

_HERE = Path(__file__).parent
OPENAPI_DOCUMENT = (_HERE / "openapi.json").read_bytes()
_encode = msgspec.json.Encoder().encode
FR_ID = "fulfillmentRequestId"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _json(value: object, status: int = 200) -> Response:
    return Response(_encode(value), status, media_type="application/json")


@authenticated
async def sync_accounting(request: Request, principal: Principal) -> Response:
    """Record the result of pushing a fulfillment request into the books."""
    fr_id = parse_int(request.path_params[FR_ID], FR_ID)
    check_json_content_type(request)
    settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.request_read_timeout)
    patch = decode_patch(body)
    now = now_ms()
    audit = Audit(principal.token_id, principal.token_type, request.state.request_id, now)
    await _store(request).sync_accounting(fr_id, AccountingPlan(principal, patch, now), audit)
    return Response(status_code=204)


@authenticated
async def get_fulfillment_request(request: Request, principal: Principal) -> Response:
    fr_id = parse_int(request.path_params[FR_ID], FR_ID)
    fr = await _store(request).get_fulfillment_request(fr_id, principal)
    if fr is None:
        raise NotFound("Fulfillment request not found.")
    return _json(fr)


@authenticated
async def accounting_history(request: Request, principal: Principal) -> Response:
    fr_id = parse_int(request.path_params[FR_ID], FR_ID)
    page = parse_history_query(request.query_params)
    entries = await _store(request).accounting_history(fr_id, principal, **page)
    if entries is None:
        raise NotFound("Fulfillment request not found.")
    return _json(entries)


@authenticated
async def list_fulfillment_requests(request: Request, principal: Principal) -> Response:
    query = parse_fr_query(request.query_params)
    return _json(await _store(request).list_fulfillment_requests(principal, query))


@authenticated
async def count_fulfillment_requests(request: Request, principal: Principal) -> Response:
    query = parse_fr_query(request.query_params)
    return _json({"count": await _store(request).count_fulfillment_requests(principal, query)})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the store answers; 'degraded' when rate limits run on local buckets."""
    try:
        await _store(request).ping()
        store_ok = True
    except StoreBusy:
        store_ok = False
    limiter = await request.app.state.limiter.status()
    status = "ok" if store_ok and limiter == "ok" else "degraded" if store_ok else "unavailable"
    body = {"status": status, "store": "ok" if store_ok else "unavailable", "rateLimit": limiter}
    return _json(body, 200 if store_ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text format; counters summed over every worker process."""
    board: metrics_text.Metrics = request.app.state.metrics
    await board.refresh_gauges(_store(request), request.app.state.limiter)
    body = metrics_text.render(board.collect())
    return Response(body, media_type=metrics_text.CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    return Response(OPENAPI_DOCUMENT, media_type="application/json")


FR_PATH = "/fulfillment-requests/{fulfillmentRequestId}"
ROUTES = [
    Route(f"{FR_PATH}/accounting-sync", sync_accounting, methods=["PATCH"]),
    Route(f"{FR_PATH}/accounting-sync/history", accounting_history, methods=["GET"]),
    Route("/fulfillment-requests/count", count_fulfillment_requests, methods=["GET"]),
    Route("/fulfillment-requests", list_fulfillment_requests, methods=["GET"]),
    Route(FR_PATH, get_fulfillment_request, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
