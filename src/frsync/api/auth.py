"""Who is calling, and may they call now: the token lookup and the rate limit, in one place.

Every FR route is wrapped by `authenticated`, so no handler can forget either. The order is
the contract's: token first (a bad one is limited per client address), then the token's
bucket. Nothing of the request is read before both pass.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any, Protocol

from starlette.requests import Request

from frsync.api.call import Answer, ApiCall
from frsync.config import Settings
from frsync.domain import Principal
from frsync.errors import RateLimited, StoreBusy, Unauthenticated
from frsync.ratelimit import RateLimitStore
from frsync.store import Store
from frsync.tokens import hash_token

POOL_SCOPE_KEY = "frsync.pool"  # the Decision, for the middleware to turn into headers
PRINCIPAL_SCOPE_KEY = "frsync.principal"  # who called, for the sandbox's request journal
# The hash of a token that authenticated nothing: the sandbox journal asks whose it was.
REFUSED_HASH_SCOPE_KEY = "frsync.refused_hash"
UNAUTHENTICATED = "A valid API token is required in the X-API-TOKEN header."
OPERATOR_REFUSED = (
    "This is an operator token: it opens the console and the sandbox admin API, not the"
    " fulfillment-request endpoints. Use an account, source or channel token here."
)
# RFC 9110 §5.5: whitespace around a field value is not part of it.
_OWS = " \t"
_MAX_CACHED = 100_000

Handler = Callable[[ApiCall, Principal], Awaitable[Answer]]
# Sandbox fault rules: may delay, or raise to answer in the request's place (sandbox/faults.py).
FaultHook = Callable[[Request, Principal], Awaitable[None]]


class Caller(Protocol):
    """What the gatekeeper reads of a request: an `ApiCall`, or Starlette's `Request` (the
    console's sign-in)."""

    @property
    def scope(self) -> Any: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def _as_request(caller: Caller) -> Request:
    """A Starlette `Request` for the sandbox's fault hook (sandbox mode only)."""
    return caller if isinstance(caller, Request) else Request(caller.scope)


class TokenCache:
    """Token hash → principal, so a request rarely costs a store round trip for its token.

    A known token is trusted for up to `max_age` seconds, but every `ttl` seconds one query
    asks the store how many tokens were ever revoked, and any change empties the cache: a
    revocation takes effect within `ttl` (the contract allows one second) while thousands
    of tokens cost one lookup each per `max_age`, not one per request. Unknown tokens are
    remembered for `ttl` only, so a newly issued token works within that time."""

    def __init__(
        self,
        store: Store,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = 60.0,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._max_age = max(ttl, max_age)
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Principal | None]] = {}
        self._revoked: int | None = None
        self._next_check = float("-inf")

    async def lookup(self, token_hash: bytes) -> Principal | None:
        if self._max_age <= 0:  # caching off (sandbox mode): a removed token fails at once
            return await self._store.find_token(token_hash)
        now = self._clock()
        if now >= self._next_check:
            await self._drop_if_revoked(now)
        entry = self._entries.get(token_hash)
        if entry is not None and entry[0] > now:
            return entry[1]
        principal = await self._store.find_token(token_hash)
        if len(self._entries) >= _MAX_CACHED:
            self._entries.clear()  # simplest bound; refilling costs one lookup per token
        self._entries[token_hash] = (now + (self._max_age if principal else self._ttl), principal)
        return principal

    async def _drop_if_revoked(self, now: float) -> None:
        self._next_check = now + self._ttl
        try:
            revoked = await self._store.revoked_token_count()
        except StoreBusy:
            # The store is unreachable: no revocation can be recorded in it meanwhile, and
            # every FR route needs it, so the request goes on to its own 503, which then
            # carries the token's pool headers. The check runs again in `ttl`.
            return
        if revoked != self._revoked:
            self._entries.clear()
            self._revoked = revoked


def bucket_key(token_hash: bytes) -> str:
    """A token's rate-limit bucket, keyed by its hash (never the token itself)."""
    return f"t:{token_hash[:16].hex()}"


UsageCounter = Callable[[int, bool], None]  # (token id, answered 429) per admitted request
LiveCheck = Callable[[Principal], Awaitable[bool]]  # the sandbox's: is its tenant still there?


class Gatekeeper:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenCache,
        limiter: RateLimitStore,
        faults: FaultHook | None = None,
        count_usage: UsageCounter | None = None,
        live: LiveCheck | None = None,
    ):
        self._settings = settings
        self._tokens = tokens
        self._limiter = limiter
        self._faults = faults
        self._live = live
        self._count_usage = count_usage or (lambda token_id, limited: None)

    async def identify(self, request: Caller) -> tuple[Principal, str]:
        """The live token's principal (any type) and its bucket key; Unauthenticated (or, for
        an address that keeps sending bad tokens, RateLimited) otherwise."""
        return await self._identify(request, request.headers.get("x-api-token", ""))

    async def identify_token(self, request: Caller, token: str) -> tuple[Principal, str]:
        """`identify` for a token that came another way (the console's sign-in form), also
        refusing a removed sandbox tenant's (for API requests the sandbox's fault hook does,
        in the read that also finds its rules' version)."""
        return await self._identify(request, token, check_live=True)

    async def _identify(
        self, request: Caller, token: str, *, check_live: bool = False
    ) -> tuple[Principal, str]:
        token = token.strip(_OWS)
        token_hash = hash_token(token) if token else None
        principal = await self._tokens.lookup(token_hash) if token_hash else None
        if principal is not None and check_live and not await self.is_live(principal):
            principal = None  # a removed sandbox tenant's, not yet purged: as if gone
        if principal is None or token_hash is None:
            if token_hash is not None:
                request.scope[REFUSED_HASH_SCOPE_KEY] = token_hash
            await self._slow_down_guessing(request)
            raise Unauthenticated(UNAUTHENTICATED)
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
        return principal, bucket_key(token_hash)

    async def is_live(self, principal: Principal) -> bool:
        """False only for a removed sandbox tenant's token whose rows a purge has yet to
        delete (always True outside sandbox mode)."""
        return self._live is None or await self._live(principal)

    async def admit(self, request: Caller) -> Principal:
        """An API caller's principal, its bucket charged; Unauthenticated / RateLimited."""
        principal, bucket = await self.identify(request)
        if principal.is_operator:
            raise Unauthenticated(OPERATOR_REFUSED)
        if self._faults is not None:  # sandbox mode: after the token, before the bucket
            await self._faults(_as_request(request), principal)
        try:
            await self.charge(request, bucket)
        except RateLimited:
            self._count_usage(principal.token_id, True)
            raise
        self._count_usage(principal.token_id, False)
        return principal

    async def charge(self, request: Caller, bucket: str) -> None:
        """Take one request from the token's bucket, or raise RateLimited."""
        settings = self._settings
        decision = await self._limiter.hit(bucket, settings.burst, settings.rate)
        request.scope[POOL_SCOPE_KEY] = decision
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit of {settings.rate:g} requests per second exceeded; "
                f"retry after {decision.retry_after} s.",
                decision,
            )

    async def _slow_down_guessing(self, request: Caller) -> None:
        client = request.scope.get("client")
        address = client[0] if client else "unknown"
        decision = await self._limiter.hit(
            f"a:{address}", self._settings.invalid_token_burst, self._settings.invalid_token_rate
        )
        if not decision.allowed:
            raise RateLimited(
                "Too many requests with invalid tokens from this address; "
                f"retry after {decision.retry_after} s.",
                decision,
            )


def authenticated(handler: Handler) -> Callable[[ApiCall], Awaitable[Answer]]:
    """Route wrapper: admit the caller, then call `handler(call, principal)`."""

    @wraps(handler)
    async def route(call: ApiCall) -> Answer:
        principal = await call.app.state.gatekeeper.admit(call)
        return await handler(call, principal)

    return route
