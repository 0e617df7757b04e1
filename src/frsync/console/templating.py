"""The console's Jinja2 environment: templates shipped in the package, autoescaped, and the
few filters pages need to show times and numbers the way an on-call engineer reads them."""

from __future__ import annotations

import jinja2
from starlette.templating import Jinja2Templates

from frsync.models import format_ms, now_ms


def when(ms: int | None) -> str:
    """`2026-11-27 07:45:12 UTC`, or an em dash for no time."""
    if ms is None:
        return "—"
    return format_ms(ms)[:19].replace("T", " ") + " UTC"


def iso(text: str | None) -> str:
    """The API's `2026-11-27T07:45:12.123Z` as `2026-11-27 07:45:12 UTC`."""
    return "—" if not text else text[:19].replace("T", " ") + " UTC"


def ago(ms: int | None, now: int | None = None) -> str:
    """`just now`, `42 s ago`, `5 min ago`, `3 h ago`, `12 days ago`."""
    if ms is None:
        return "never"
    seconds = max(0, ((now or now_ms()) - ms) // 1000)
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size and (seconds >= 5 or unit != "s"):
            return f"{seconds // size} {unit} ago"
    return "just now"


def number(value: int) -> str:
    return f"{value:,}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("frsync.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, ago=ago, number=number)
    return env


templates = Jinja2Templates(env=_environment())
