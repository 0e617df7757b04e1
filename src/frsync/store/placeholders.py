"""SQL placeholders, the one home: SQLite binds `?`, PostgreSQL (asyncpg) `$1, $2 …`.

SQL shared by both backends is built either by a builder that asks for the n-th placeholder
(`store/queries.py`: pass `PLACEHOLDERS[store.kind]`), or written with `?` and renumbered for
PostgreSQL by `numbered` (no statement of ours has a literal question mark).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

Placeholder = Callable[[int], str]  # the n-th (from 1) bound value's mark
_MARK = re.compile(r"\?")


def qmark(_: int) -> str:
    return "?"


def dollar(n: int) -> str:
    return f"${n}"


@functools.lru_cache(maxsize=512)
def numbered(statement: str) -> str:
    """`?` marks → `$1`, `$2`, … in order."""
    numbers = iter(range(1, statement.count("?") + 1))
    return _MARK.sub(lambda _: f"${next(numbers)}", statement)


PLACEHOLDERS: dict[str, Placeholder] = {"sqlite": qmark, "postgresql": dollar}
