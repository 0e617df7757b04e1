"""The one table from errors to answers, and the one answer shape (RFC 9457 problem+json).

Every error answer's body comes from `encode_problem`, whoever writes it: the app's
exception handlers, the middleware's last resort, and the protocol layer's 408.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from frsync import errors
from frsync.api.request_id import new_request_id
from frsync.api.violations import more_violations
from frsync.contract import MAX_HEAD_BYTES, MAX_LISTED_ERRORS
from frsync.errors import FieldError, FrsyncError

PROBLEM_TYPE = "application/problem+json"

# Every status frsync answers with a problem, and its title (RFC 9110's reason phrase).
HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# error class -> (status, title, type slug). Subclasses find their nearest listed base.
ERROR_TABLE: dict[type[FrsyncError], tuple[int, str, str]] = {
    errors.InvalidRequest: (400, HTTP_TITLES[400], "invalid-request"),
    errors.InvalidItems: (400, HTTP_TITLES[400], "invalid-items"),
    errors.Unauthenticated: (401, HTTP_TITLES[401], "unauthorized"),
    errors.NotFound: (404, HTTP_TITLES[404], "not-found"),
    errors.RequestTimeout: (408, HTTP_TITLES[408], "request-timeout"),
    errors.PayloadTooLarge: (413, HTTP_TITLES[413], "payload-too-large"),
    errors.UnsupportedMediaType: (415, HTTP_TITLES[415], "unsupported-media-type"),
    errors.RateLimited: (429, HTTP_TITLES[429], "rate-limited"),
    errors.StoreBusy: (503, HTTP_TITLES[503], "unavailable"),
}
# Answers no domain error stands behind, in the same shape: the router's (unknown path,
# wrong method), the last resort for an unexpected failure, the 503 of a server shutting down,
# and what the protocol layer writes itself: a 408 for a request head that never completes,
# a 431 for one that is too large.
# status -> (type slug, detail)
HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    404: ("not-found", "No such resource."),
    405: ("method-not-allowed", "Method not allowed here."),
    408: ("request-timeout", "The request did not arrive in time."),
    431: ("headers-too-large", f"The request line and headers exceed {MAX_HEAD_BYTES} bytes."),
    500: ("internal", "Unexpected error; quote the request id."),
    503: ("shutting-down", "The server is shutting down; retry the request."),
}


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    message: str  # repeats `detail` for clients that read `.message`
    errors: list[dict[str, str]] | None = None
    requestId: str | None = None


_encoder = msgspec.json.Encoder()


def encode_problem(
    status: int,
    title: str,
    slug: str,
    detail: str,
    *,
    field_errors: list[FieldError] | None = None,
    request_id: str | None = None,
) -> bytes:
    """The one problem+json body (RFC 9457) every error answer carries; `errors` on a 400."""
    errors = None
    if status == 400:
        errors = [{"field": e.field, "message": e.message} for e in _listed(field_errors or [])]
    problem = Problem(
        type=f"urn:frsync:problem:{slug}",
        title=title,
        status=status,
        detail=detail,
        message=detail,
        errors=errors,
        requestId=request_id,
    )
    try:
        return _encoder.encode(problem)
    except UnicodeEncodeError:
        # A lone surrogate the caller sent (in a key, say) and a message repeats: spelled
        # out as text, so the answer stays valid UTF-8 and valid JSON for every client.
        return _encoder.encode(_spelled_out(msgspec.to_builtins(problem)))


def _spelled_out(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_spelled_out(item) for item in value]
    if isinstance(value, dict):
        return {key: _spelled_out(item) for key, item in value.items()}
    return value


def _listed(found: list[FieldError]) -> list[FieldError]:
    """At most MAX_LISTED_ERRORS entries, the last saying how many more there are."""
    if len(found) <= MAX_LISTED_ERRORS:
        return found
    rest = len(found) - MAX_LISTED_ERRORS + 1
    return [*found[: MAX_LISTED_ERRORS - 1], more_violations(rest)]


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
    body = encode_problem(
        status, title, slug, detail, field_errors=field_errors, request_id=request_id
    )
    return Response(body, status, headers, media_type=PROBLEM_TYPE)


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
        status,
        title,
        slug,
        error.detail,
        field_errors=field_errors,
        request_id=request_id,
        headers=headers,
    )


def _lookup(kind: type[FrsyncError]) -> tuple[int, str, str]:
    for cls in kind.__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, HTTP_TITLES[500], HTTP_PROBLEMS[500][0]


def http_problem(
    status: int, detail: str | None, request_id: str | None, **headers: Any
) -> Response:
    """A problem of HTTP_PROBLEMS (its own detail unless `detail` is given)."""
    slug, known = HTTP_PROBLEMS.get(status, ("error", "Error."))
    title = HTTP_TITLES.get(status, "Error")
    return problem_response(
        status, title, slug, detail or known, request_id=request_id, headers=headers
    )


def protocol_answer(status: int) -> bytes:
    """A whole HTTP/1.1 answer of HTTP_PROBLEMS (408, 431) for the protocol layer to write
    before any app runs, so with no Response object: the body is the same problem as
    everywhere, with a request id of its own."""
    slug, detail = HTTP_PROBLEMS[status]
    title = HTTP_TITLES[status]
    request_id = new_request_id()
    body = encode_problem(status, title, slug, detail, request_id=request_id)
    head = (
        f"HTTP/1.1 {status} {title}\r\ncontent-type: {PROBLEM_TYPE}\r\nconnection: close\r\n"
        f"cache-control: no-store\r\nx-content-type-options: nosniff\r\n"
        f"x-request-id: {request_id}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
