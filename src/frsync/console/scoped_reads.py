"""The console's scoped reads that are the same SQL on both backends: each backend supplies
how a read runs (`_big`) and says which dialect it speaks (`postgres`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from frsync.console import sql
from frsync.console.store import ErrorCount, ErrorRow, HourCount, TokenRow
from frsync.domain import Principal


class ScopedReads:
    postgres: ClassVar[bool]

    async def _big(self, statement: str, params: Sequence[Any]) -> list[Any]:
        """Run one read that may scan much of an account."""
        raise NotImplementedError

    async def syncs_per_hour(self, principal: Principal, since: int) -> list[HourCount]:
        rows = await self._big(*sql.syncs_per_hour(principal, since, postgres=self.postgres))
        return [HourCount(*row) for row in rows]

    async def top_errors(self, principal: Principal, limit: int) -> list[ErrorCount]:
        rows = await self._big(*sql.top_errors(principal, limit, postgres=self.postgres))
        return [ErrorCount(*row) for row in rows]

    async def errors_page(
        self,
        principal: Principal,
        before: tuple[int, int] | None,
        limit: int,
        message: str | None = None,
    ) -> list[ErrorRow]:
        statement, params = sql.errors_page(principal, before, limit, self.postgres, message)
        return [ErrorRow(*row) for row in await self._big(statement, params)]

    async def count_errors(self, principal: Principal, message: str) -> int:
        (row,) = await self._big(*sql.count_errors(principal, message, postgres=self.postgres))
        return int(row[0])

    async def tokens_page(self, after_id: int, limit: int, since_minute: int) -> list[TokenRow]:
        rows = await self._big(sql.TOKENS_PAGE, (since_minute, after_id, limit))
        return [TokenRow(*row) for row in rows]
