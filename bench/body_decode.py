"""Cost of turning a PATCH body into an `AccountingPatch`: the valid-body path, and the 400.

`decode_patch` answers a valid body from msgspec's typed decoder alone; only a refused body
pays for the second walk that lists every violation. This measures both, in microseconds
per call (best of several timeit repeats, so other load on the machine inflates nothing):

    .venv/bin/python -m bench.body_decode
"""

from __future__ import annotations

import json
import timeit

from frsync.api.body import decode_patch
from frsync.errors import InvalidRequest

BODIES = {
    "reference success-1": {
        "accountingSynced": True,
        "externalAccountingId": "TEST-221",
        "accountingError": None,
        "items": [{"id": 12312, "externalAccountingItemId": "TEST-221-A"}],
    },
    "empty {}": {},
    "20 items": {
        "accountingSynced": True,
        "externalAccountingId": "QB-INV-000221",
        "items": [{"id": 12312 + n, "externalAccountingItemId": f"QB-L-{n}"} for n in range(20)],
    },
}
INVALID = {
    "three violations": {
        "accountingSynced": "yes",
        "externalAccountingId": 7,
        "items": [{"externalAccountingItemId": "x"}],
    },
}


def _per_call_us(body: bytes, *, valid: bool) -> float:
    def call() -> None:
        try:
            decode_patch(body)
        except InvalidRequest:
            assert not valid
        else:
            assert valid

    number = 20_000
    best = min(timeit.repeat(call, number=number, repeat=7))
    return best / number * 1e6


def main() -> None:
    for name, value in BODIES.items():
        us = _per_call_us(json.dumps(value).encode(), valid=True)
        print(f"valid   {name:22} {us:7.2f} µs")
    for name, value in INVALID.items():
        us = _per_call_us(json.dumps(value).encode(), valid=False)
        print(f"refused {name:22} {us:7.2f} µs")


if __name__ == "__main__":
    main()
