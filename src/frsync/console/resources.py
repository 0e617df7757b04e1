"""What the console keeps for the life of the app (born in the lifespan, on app.state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from frsync.console.overview import OverviewCache
from frsync.console.store import ConsoleStore
from frsync.console.usage import UsageRecorder


@dataclass(slots=True)
class ConsoleResources:
    queries: ConsoleStore
    overviews: OverviewCache = field(default_factory=OverviewCache)

    async def close(self) -> None:
        await self.overviews.close()
        await self.queries.close()


def resources(request: Request) -> ConsoleResources:
    found: ConsoleResources = request.app.state.console
    return found


def usage_recorder(request: Request) -> UsageRecorder:
    recorder: UsageRecorder = request.app.state.usage
    return recorder
