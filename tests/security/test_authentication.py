"""Family 2 — broken authentication (OWASP API2): every kind of bad token, one answer.

Bad tokens of every shape, on every FR route, with the worst bodies we can send: all get
the same 401, byte for byte apart from the request id, because nothing of the request is
read before the token is checked. Guessing tokens from one address runs into that
address's own limit, while a valid token from the same address keeps working.
"""

from __future__ import annotations

import hashlib
import itertools

import httpx
from starlette.applications import Starlette

from frsync.tokens import hash_token
from tests.security.conftest import recording_client
from tests.security.dump import Dumper, rows_changed
from tests.security.tally import EXTRA_SECRETS, Recorder
from tests.support import TOKENS

REAL = TOKENS["account1"]
REVOKED = "tok-revoked-for-security-suite-0001"
BAD_TOKENS: dict[str, dict[str, bytes]] = {
    "missing": {},
    "empty": {"X-API-TOKEN": b""},
    "whitespace": {"X-API-TOKEN": b"    "},
    "tab": {"X-API-TOKEN": b"\t"},
    "padded real token + suffix": {"X-API-TOKEN": f" {REAL}x ".encode()},
    "real token + suffix": {"X-API-TOKEN": (REAL + "x").encode()},
    "prefix of real token": {"X-API-TOKEN": REAL[:-1].encode()},
    "upper-cased real token": {"X-API-TOKEN": REAL.upper().encode()},
    "Bearer only": {"Authorization": f"Bearer {REAL}".encode()},
    "Bearer in X-API-TOKEN": {"X-API-TOKEN": f"Bearer {REAL}".encode()},
    "Basic auth": {"Authorization": b"Basic dXNlcjpwYXNz"},
    "token in cookie": {"Cookie": f"X-API-TOKEN={REAL}".encode()},
    "oversized 8 KiB": {"X-API-TOKEN": b"t" * 8192},
    "oversized 64 KiB": {"X-API-TOKEN": b"t" * 65536},
    "non-ASCII latin-1": {"X-API-TOKEN": "tök-ümlaut-0000000000".encode("latin-1")},
    "non-ASCII utf-8 bytes": {"X-API-TOKEN": "tök-€-00000000000000".encode()},
    "invalid utf-8": {"X-API-TOKEN": b"\xff\xfe\xfd-0000000000000000"},
    "NUL byte": {"X-API-TOKEN": b"tok-\x00-000000000000000"},
    "SQL injection": {"X-API-TOKEN": b"' OR '1'='1' --"},
    "stored hash (hex)": {"X-API-TOKEN": hash_token(REAL).hex().encode()},
    "sha256 of token": {"X-API-TOKEN": hashlib.sha256(REAL.encode()).hexdigest().encode()},
    "token id": {"X-API-TOKEN": b"1"},
    "revoked": {"X-API-TOKEN": REVOKED.encode()},
    "two headers, one bad": {"X-API-TOKEN": b"nope-nope-nope-nope"},
}
# What each route gets: the bodies and paths that would fail later checks if they were read.
HOSTILE_REQUESTS: list[tuple[str, str, bytes, str]] = [
    (
        "PATCH",
        "/fulfillment-requests/221/accounting-sync",
        b'{"accountingSynced": true}',
        "application/json",
    ),
    (
        "PATCH",
        "/fulfillment-requests/221/accounting-sync",
        b"\xff\x00" * 1_500_000,
        "application/json",
    ),
    ("PATCH", "/fulfillment-requests/221/accounting-sync", b"[" * 100_000, "application/json"),
    ("PATCH", "/fulfillment-requests/221/accounting-sync", b"{}", "text/plain"),
    (
        "PATCH",
        "/fulfillment-requests/9223372036854775808/accounting-sync",
        b"{}",
        "application/json",
    ),
    ("PATCH", "/fulfillment-requests/x/accounting-sync", b"{", "application/json"),
    ("GET", "/fulfillment-requests/221", b"", ""),
    ("GET", "/fulfillment-requests/9223372036854775808", b"", ""),
    ("GET", "/fulfillment-requests/221/accounting-sync/history", b"", ""),
    ("GET", "/fulfillment-requests?filterPageSize=99999&bogus=1", b"", ""),
    ("GET", "/fulfillment-requests/count?filterStatus=Nope", b"", ""),
]


def _masked(answer: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    rid = answer.headers["x-request-id"]
    headers = sorted((k, v) for k, v in answer.headers.items() if k not in ("x-request-id", "date"))
    return answer.status_code, answer.content.replace(rid.encode(), b"<rid>"), headers


async def test_every_bad_token_on_every_route_gets_one_identical_401(
    app: Starlette, dumper: Dumper, store_name: str
) -> None:
    recorder = Recorder("2 authentication", store_name)
    store = app.state.store
    EXTRA_SECRETS.add(REVOKED)
    await store.revoke_token(await store.create_token(hash_token(REVOKED), "account", 1, "old"))
    reference: tuple[int, bytes, list[tuple[str, str]]] | None = None
    before = await dumper.dump()
    # Each case comes from its own address: the per-address guessing limit is tested below.
    addresses = (f"10.2.{i // 250}.{i % 250 + 1}" for i in itertools.count())
    for name, headers in BAD_TOKENS.items():
        for method, path, body, content_type in HOSTILE_REQUESTS:
            recorder.case()
            async with recording_client(app, recorder, address=next(addresses)) as client:
                sent: dict[str, bytes] = {
                    **headers,
                    **({"Content-Type": content_type.encode()} if content_type else {}),
                }
                if name == "two headers, one bad":
                    sent_list = [
                        (b"X-API-TOKEN", b"nope-nope-nope-nope"),
                        (b"X-API-TOKEN", REAL.encode()),
                    ]
                    answer = await client.request(method, path, content=body, headers=sent_list)
                else:
                    answer = await client.request(
                        method,
                        path,
                        content=body,
                        headers=[(k.encode(), v) for k, v in sent.items()],
                    )
            assert answer.status_code == 401, (name, method, path, answer.status_code)
            reference = reference or _masked(answer)
            assert _masked(answer) == reference, (name, method, path)
    if changed := rows_changed(before, await dumper.dump()):
        recorder.finding("rows_changed", f"bad-token requests changed {changed} rows")
    recorder.counts.notes.append(
        f"{len(BAD_TOKENS)} token shapes x {len(HOSTILE_REQUESTS)} requests"
    )
    recorder.assert_clean()


async def test_guessing_from_one_address_is_slowed_by_its_own_limit(
    app: Starlette, store_name: str
) -> None:
    recorder = Recorder("2 authentication", store_name)
    guesses = [f"tok-guess-{n:020d}" for n in range(60)]
    statuses = []
    async with recording_client(app, recorder, address="10.9.9.9") as guesser:
        for guess in guesses:  # 60 guesses sent as fast as the app answers
            recorder.case()
            guesser.headers["X-API-TOKEN"] = guess
            statuses.append((await guesser.get("/fulfillment-requests/221")).status_code)
        refused = await guesser.get("/fulfillment-requests/221")
    async with recording_client(app, recorder, REAL, address="10.9.9.9") as honest:
        honest_status = (await honest.get("/fulfillment-requests/221")).status_code
    async with recording_client(
        app, recorder, "tok-other-address-000000", address="10.9.9.10"
    ) as other:
        other_status = (await other.get("/fulfillment-requests/221")).status_code
    # Burst of 20, then 5 per second: in the fraction of a second this takes, at most a few
    # more get through; the rest are refused before the token is even looked up.
    assert statuses[:20] == [401] * 20
    assert statuses.count(429) >= 30, statuses
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert honest_status == 200 and other_status == 401
    recorder.counts.notes.append(
        f"guessing: {statuses.count(401)}x401, {statuses.count(429)}x429 of 60"
    )
    recorder.assert_clean()
