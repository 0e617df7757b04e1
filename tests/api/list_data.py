"""The data the list and count tests run on: the basic fixture (whose FRs cover the edge
cases by hand: an empty error, false without an error, no channel) plus generated FRs over
the same accounts (every status and accounting state, and enough rows for several pages)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from starlette.applications import Starlette

from frsync import generate
from frsync.config import Settings
from tests.support import fixture_copy, running_app

LIST, COUNT = "/fulfillment-requests", "/fulfillment-requests/count"
GENERATED = 240


def _data() -> dict[str, Any]:
    data = fixture_copy()
    scopes = generate.scopes()
    for kind, rows in scopes.items():
        known = {row["id"] for row in data[kind]}
        data[kind] += [row for row in rows if row["id"] not in known]
    frs = generate.fulfillment_requests(GENERATED, seed=7)
    data["fulfillmentRequests"] += msgspec.to_builtins(list(frs))
    return data


DATA = _data()


@asynccontextmanager
async def app_on_data(settings: Settings) -> AsyncIterator[Starlette]:
    """The app on DATA; buckets big enough for tests that page through everything."""
    roomy = dataclasses.replace(settings, burst=10_000)
    async with running_app(roomy, DATA) as app:
        yield app
