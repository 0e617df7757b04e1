"""The benchmark's data: 100,000 FRs, 10,000 tokens, and the targets file wrk's Lua reads.

Built straight through the store API (`store.load`), deterministic, with known token
plaintexts. Token k is scoped so that it covers the FRs k+1, k+1+10,000, … (ten each), so
every target line pairs a token with FRs it may change and items that belong to them:
  - 100 accounts; 20 sources and 5 channels per account;
  - token k: account token when k % 10 == 0, channel token when k % 10 == 1, else source;
  - FR i (1 … 100,000) belongs to token (i-1) % 10,000's account, source and channel, and
    has 1–3 items with ids 10·i + j;
  - the "foreign" FR of a line belongs to the next token, whose account differs (→ 404).
A further 100,000 account tokens (`memory_token`) serve the limiter-memory measurement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from frsync.store.base import LoadData
from frsync.tokens import hash_token

ACCOUNTS = 100
SOURCES_PER_ACCOUNT = 20
CHANNELS_PER_ACCOUNT = 5
TOKENS = 10_000
FRS = 100_000
MEMORY_TOKENS = 100_000
_BATCH = 20_000
_GENERATED_AT = 1_763_000_000_000  # 2025-11-13, ms since the epoch
_STATUSES = ("Processed", "Acknowledged", "Processing", "Unprocessed")


@dataclass(frozen=True, slots=True)
class Scope:
    account: int
    source: int
    channel: int


def scope_of(k: int) -> Scope:
    """Token k's account, source and channel (whatever its type, these are the FRs' owners)."""
    account = k % ACCOUNTS + 1
    source = account * 1000 + (k // ACCOUNTS) % SOURCES_PER_ACCOUNT
    channel = account * 1000 + 500 + (k // ACCOUNTS) % CHANNELS_PER_ACCOUNT
    return Scope(account, source, channel)


def token_type_of(k: int) -> str:
    return {0: "account", 1: "channel"}.get(k % 10, "source")


def scope_id_of(k: int) -> int:
    scope = scope_of(k)
    return {"account": scope.account, "channel": scope.channel}.get(token_type_of(k), scope.source)


def token(k: int) -> str:
    """Bench-only plaintext; the store keeps its SHA-256 like any other token."""
    return f"frs_bench_{k:06d}_0123456789abcdef"


def memory_token(k: int) -> str:
    return f"frs_memory_{k:06d}_0123456789abcdef"


def item_ids(fr_id: int) -> list[int]:
    return [fr_id * 10 + j for j in range(1 + fr_id * 7 % 3)]


def _scopes() -> LoadData:
    data = LoadData()
    for a in range(1, ACCOUNTS + 1):
        data.accounts.append((a, f"Account {a}"))
        for s in range(SOURCES_PER_ACCOUNT):
            data.sources.append((a * 1000 + s, a, f"Supplier {a}-{s}"))
        for c in range(CHANNELS_PER_ACCOUNT):
            data.channels.append((a * 1000 + 500 + c, a, f"Store {a}-{c}"))
    for k in range(TOKENS):
        data.tokens.append((hash_token(token(k)), token_type_of(k), scope_id_of(k), "bench", 0))
    for k in range(MEMORY_TOKENS):
        data.tokens.append((hash_token(memory_token(k)), "account", 1, "bench-memory", 0))
    return data


def _fr_batch(first: int, last: int) -> LoadData:
    data = LoadData()
    for fr_id in range(first, last + 1):
        scope = scope_of((fr_id - 1) % TOKENS)
        at = _GENERATED_AT + fr_id * 60_000
        data.fulfillment_requests.append((
            fr_id, f"FR-{fr_id}", scope.account, scope.source, 500_000 + fr_id, scope.channel,
            _STATUSES[fr_id % 4], at, at, None, at, None, None, None, None,
        ))  # fmt: skip
        for item in item_ids(fr_id):
            data.items.append(
                (item, fr_id, f"SKU-{item % 997}", f"Item {item}", 1 + item % 4, 12.5, item, None)
            )
    return data


def batches() -> Iterator[LoadData]:
    """Everything, in batches small enough to keep memory flat."""
    yield _scopes()
    for first in range(1, FRS + 1, _BATCH):
        yield _fr_batch(first, min(FRS, first + _BATCH - 1))


def write_targets(path: Path) -> None:
    """One line per FR: `token fr_id foreign_fr_id item,item,…` (the Lua scripts' input)."""
    lines = []
    for fr_id in range(1, FRS + 1):
        k = (fr_id - 1) % TOKENS
        foreign = fr_id % FRS + 1  # the next FR, owned by token k+1 in another account
        items = ",".join(str(i) for i in item_ids(fr_id))
        lines.append(f"{token(k)} {fr_id} {foreign} {items}\n")
    path.write_text("".join(lines))


def write_memory_tokens(path: Path) -> None:
    path.write_text("".join(f"{memory_token(k)} 1 1 1\n" for k in range(MEMORY_TOKENS)))
