"""frsync: Flxpoint's fulfillment-request accounting-sync API, server and client."""

__version__ = "0.1.0"
