"""The HTTP API: `create_app(settings)` builds it."""

from frsync.api.app import create_app

__all__ = ["create_app"]
