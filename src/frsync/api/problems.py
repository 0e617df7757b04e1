"""The one table from errors to answers, and the one answer shape (RFC 9457 problem+json)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from frsync import errors
from frsync.errors import FieldError, FrsyncError

PROBLEM_TYPE = "application/problem+json"

# error class -> (status, title, type slug). Subclasses find their nearest listed base.
ERROR_TABLE: dict[type[FrsyncError], tuple[int, str, str]] = {
    errors.InvalidRequest: (400, "Bad Request", "invalid-request"),
    errors.InvalidItems: (400, "Bad Request", "invalid-items"),
    errors.Unauthenticated: (401, "Unauthorized", "unauthorized"),
    errors.NotFound: (404, "Not Found", "not-found"),
    errors.RequestTimeout: (408, "Request Timeout", "request-timeout"),
    errors.PayloadTooLarge: (413, "Content Too Large", "payload-too-large"),
    errors.UnsupportedMediaType: (415, "Unsupported Media Type", "unsupported-media-type"),
    errors.RateLimited: (429, "Too Many Requests", "rate-limited"),
    errors.StoreBusy: (503, "Service Unavailable", "unavailable"),
}
# Plain HTTP answers the router gives (unknown path, wrong method), in the same shape.
HTTP_TITLES = {404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    message: str  # repeats `detail` for clients that read `.message`
    errors: list[dict[str, str]] | None = None
    requestId: str | None = None


_encoder = msgspec.json.Encoder()


def problem_response(
    status: int,
    title: str,
    slug: str,
    detail: str,
    *,
    field_errors: list[FieldError] | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = Problem(
        type=f"urn:frsync:problem:{slug}",
        title=title,
        status=status,
        detail=detail,
        message=detail,
        errors=[{"field": e.field, "message": e.message} for e in field_errors or ()]
        if status == 400
        else None,
        requestId=request_id,
    )
    return Response(_encoder.encode(body), status, headers, media_type=PROBLEM_TYPE)


def error_response(error: FrsyncError, request_id: str | None) -> Response:
    status, title, slug = _lookup(type(error))
    headers: dict[str, str] = {}
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.decision.retry_after)
    elif isinstance(error, errors.StoreBusy):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, errors.RequestTimeout | errors.PayloadTooLarge):
        # The rest of the body may still be on its way: end the connection rather than
        # read (or wait for) what nobody will use.
        headers["Connection"] = "close"
    field_errors = error.errors if isinstance(error, errors.InvalidRequest) else None
    if status == 400 and not field_errors:
        field_errors = [FieldError("", error.detail)]
    return problem_response(
        status, title, slug, error.detail,
        field_errors=field_errors, request_id=request_id, headers=headers,
    )  # fmt: skip


def _lookup(kind: type[FrsyncError]) -> tuple[int, str, str]:
    for cls in kind.__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "Internal Server Error", "internal"


def http_problem(status: int, detail: str, request_id: str | None, **headers: Any) -> Response:
    title = HTTP_TITLES.get(status, "Error")
    slug = title.lower().replace(" ", "-")
    return problem_response(status, title, slug, detail, request_id=request_id, headers=headers)
