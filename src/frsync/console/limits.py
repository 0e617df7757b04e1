"""The console spends the signed-in token's own rate-limit bucket (SPEC §4 and §10): the
bucket its API requests spend, through the API's own limiter (`Gatekeeper.charge`), so
nothing a token reaches answers faster than its limit, operator tokens included. Each
console request is counted in the token's usage like an API request."""

from __future__ import annotations

from starlette.requests import Request

from frsync.console.resources import usage_recorder
from frsync.errors import RateLimited


async def spend(request: Request, token_id: int, bucket: str) -> RateLimited | None:
    """Take one request from the token's bucket: None, or the refusal (nothing taken)."""
    try:
        await request.app.state.gatekeeper.charge(request, bucket)
    except RateLimited as refused:
        usage_recorder(request).record(token_id, True)
        return refused
    usage_recorder(request).record(token_id, False)
    return None


def wait_seconds(refused: RateLimited) -> int:
    """Whole seconds until the bucket holds a request again (at least 1)."""
    return max(1, refused.decision.retry_after)


def over_limit_text(refused: RateLimited) -> str:
    return (
        "This token is over its rate limit, which the console and the API share. "
        f"Try again in {wait_seconds(refused)} s."
    )
