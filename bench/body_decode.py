"""Cost of turning a PATCH body into an `AccountingPatch`: the valid-body path, and the 400.

`decode_patch` answers a valid body from msgspec's typed decoder alone; only a refused body
pays for the second walk that lists every violation. This measures both, in microseconds
per call (best of several timeit repeats, so other load on the machine inflates nothing);
`--against REV` times the valid bodies with `src/frsync/api/body.py` as it was at git REV
too, interleaved with today's:

    .venv/bin/python -m bench.body_decode [--against 103acbb]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

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


def _per_call_us(
    body: bytes, *, valid: bool, decode: Callable[[bytes], object] = decode_patch
) -> float:
    def call() -> None:
        try:
            decode(body)
        except InvalidRequest:
            assert not valid
        else:
            assert valid

    number = 20_000
    best = min(timeit.repeat(call, number=number, repeat=7))
    return best / number * 1e6


def _body_module_at(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:src/frsync/api/body.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "body_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("body_then", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", metavar="REV", help="also time body.py as of git REV")
    args = parser.parse_args()
    if args.against:
        then = _body_module_at(args.against)
        for name, value in BODIES.items():
            body = json.dumps(value).encode()
            before, after = [], []
            for _ in range(2):
                before.append(_per_call_us(body, valid=True, decode=then.decode_patch))
                after.append(_per_call_us(body, valid=True))
            then_us, now_us = min(before), min(after)
            print(f"valid   {name:22} {then_us:7.2f} µs at {args.against}, {now_us:7.2f} µs now")
        sys.exit(0)
    for name, value in BODIES.items():
        us = _per_call_us(json.dumps(value).encode(), valid=True)
        print(f"valid   {name:22} {us:7.2f} µs")
    for name, value in INVALID.items():
        us = _per_call_us(json.dumps(value).encode(), valid=False)
        print(f"refused {name:22} {us:7.2f} µs")


if __name__ == "__main__":
    main()
