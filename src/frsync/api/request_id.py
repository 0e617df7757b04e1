"""The one request-id generator: 16 hex characters, unique per request, no syscall each.

A random 32-bit prefix per process (drawn again in a forked child) and a 32-bit counter:
`secrets.token_hex` per request was a getrandom syscall that handed the GIL to the writer
thread on every request. Ids need to be unique and unguessable only in the sense that two
workers never share one, which the per-process prefix gives.
"""

from __future__ import annotations

import itertools
import os
import secrets

_MASK = 0xFFFFFFFF


class _Ids:
    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count(secrets.randbits(32))


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.renew)


def new_request_id() -> str:
    return f"{_ids.prefix}{next(_ids.counter) & _MASK:08x}"
