"""Everything the integrator side raises (the client, `frsync push`, `frsync pending`), under
one base class, and the one function that maps answers.

```
FrsyncError                    status, problem, request_id, body (None/"" when not an answer)
 ├── APIConnectionError        no answer: refused, reset, timed out (after the retries)
 ├── UnexpectedResponseError   a success answer whose body is not what the contract says
 ├── APIStatusError            the API answered with an error status
 │    ├── BadRequestError      400 (.field_errors), also 413 and 415: the request is wrong
 │    ├── UnauthorizedError    401: token missing, unknown or revoked
 │    ├── NotFoundError        404: no such fulfillment request, or not in the token's scope
 │    ├── RateLimitedError     429 (.retry_after), left over once the retries are spent
 │    └── ServerError          5xx (.retry_after when a 503 sent one)
 ├── InputError                a push file cannot be pushed as it is (.problems, with lines)
 └── JournalError              the push journal cannot be read or written
```

The server side has its own tree under `frsync.errors.FrsyncError`; this one installs
without the server, so the two share no base.

`error_from_response` is the only place that reads an error answer. It copes with servers that
send no problem+json and no `X-Request-Id` (the real Flxpoint API may not): the body text is
kept whatever it is.
"""

from __future__ import annotations

import email.utils
import math
import time
from pathlib import Path

import httpx
import msgspec

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "BadRequestError",
    "FieldError",
    "FrsyncError",
    "InputError",
    "JournalError",
    "LineProblem",
    "NotFoundError",
    "Problem",
    "RateLimitedError",
    "ServerError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "error_from_response",
]

_BODY_EXCERPT = 1000  # characters of a non-JSON error body worth carrying around


class FieldError(msgspec.Struct, frozen=True):
    """One entry of a 400's `errors`: `{"field": "items[2].id", "message": "…"}`."""

    field: str = ""
    message: str = ""


class Problem(msgspec.Struct, frozen=True):
    """An `application/problem+json` body (RFC 9457); every member optional."""

    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    message: str | None = None
    errors: list[FieldError] = msgspec.field(default_factory=list)
    request_id: str | None = msgspec.field(default=None, name="requestId")


class FrsyncError(Exception):
    """Base class of every error the client raises."""

    status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Problem | None = None,
        request_id: str | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem = problem
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{prefix}{self.message}{suffix}"


class APIConnectionError(FrsyncError):
    """The API could not be reached or did not answer in time.

    `url` is where it was tried (None when unknown), `reason` what the transport said.
    """

    url: str | None = None
    reason: str = ""


class UnexpectedResponseError(FrsyncError):
    """The API answered success with a body that does not decode to the documented type."""


class APIStatusError(FrsyncError):
    """The API answered with an error status; also raised as is for unexpected statuses."""

    status: int


class BadRequestError(APIStatusError):
    """The request was refused as invalid; `field_errors` names what was wrong."""

    @property
    def field_errors(self) -> list[FieldError]:
        return [] if self.problem is None else list(self.problem.errors)


class UnauthorizedError(APIStatusError):
    """The token is missing, unknown or revoked: no further request can succeed."""


class NotFoundError(APIStatusError):
    """No such fulfillment request in the token's scope (the API does not tell which)."""


class RateLimitedError(APIStatusError):
    """The token's bucket is empty; `retry_after` seconds until a request fits."""

    retry_after: float | None = None


class ServerError(APIStatusError):
    """The API failed (5xx); a 503 carries `retry_after`."""

    retry_after: float | None = None


LineProblem = tuple[int | None, str]  # (line number, message); None when not about one line


class InputError(FrsyncError):
    """A push file cannot be pushed as it is; nothing has been sent."""

    def __init__(self, path: Path, problems: list[LineProblem]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s)")
        self.path = path
        self.problems = problems

    def messages(self) -> list[str]:
        return [
            f"{self.path}, line {line}: {text}" if line is not None else f"{self.path}: {text}"
            for line, text in self.problems
        ]


class JournalError(FrsyncError):
    """The push journal cannot be read or written; the message says what to do."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    413: BadRequestError,
    415: BadRequestError,
    401: UnauthorizedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer, keeping its status, problem body and request id."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIStatusError)
    problem = _decode_problem(response.content)
    error = cls(
        _message(response, problem),
        status=status,
        problem=problem,
        request_id=_request_id(response, problem),
        body=response.text[:_BODY_EXCERPT],
    )
    if isinstance(error, RateLimitedError | ServerError):
        error.retry_after = parse_retry_after(response.headers.get("retry-after"))
    return error


def _request_id(response: httpx.Response, problem: Problem | None) -> str | None:
    header: str | None = response.headers.get("x-request-id")
    return header or (problem.request_id if problem is not None else None)


def _decode_problem(content: bytes) -> Problem | None:
    try:
        return msgspec.json.decode(content, type=Problem)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _message(response: httpx.Response, problem: Problem | None) -> str:
    if problem is not None:
        for text in (problem.detail, problem.message, problem.title):
            if text:
                return text
    text = " ".join(response.text.split())[:200]
    return text or response.reason_phrase or "error"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
