"""`reset()` (sandbox mode): every bucket full again, on each store; on Redis only the keys
under the store's own prefix go."""

from __future__ import annotations

import pytest

from frsync.ratelimit import RateLimitStore


async def test_reset_fills_every_bucket_again(store: RateLimitStore) -> None:
    for key in ("t:a", "t:b"):
        while (await store.hit(key, 3, 0.001)).allowed:
            pass
    await store.reset()
    for key in ("t:a", "t:b"):
        decision = await store.hit(key, 3, 0.001)
        assert decision.allowed and decision.used == 1


@pytest.mark.redis
async def test_redis_reset_leaves_keys_under_other_prefixes_alone(redis_stores) -> None:  # type: ignore[no-untyped-def]
    mine = redis_stores.open(prefix=redis_stores.prefix + "mine:")
    other = redis_stores.open(prefix=redis_stores.prefix + "other:")
    for store in (mine, other):
        while (await store.hit("t:x", 2, 0.001)).allowed:
            pass
    await mine.reset()
    assert (await mine.hit("t:x", 2, 0.001)).allowed
    assert not (await other.hit("t:x", 2, 0.001)).allowed
