"""The integrator's side: a client for the fulfillment-request accounting-sync API.

```python
from frsync.client import Client

with Client(token) as client:  # base URL: $FRSYNC_BASE_URL, else a local `frsync serve`
    client.sync_accounting(221, accounting_synced=True, external_accounting_id="QB-221",
                           accounting_error=None, items={12312: "QB-221-A"})
    for fr in client.iter_fulfillment_requests(accounting_synced=False):
        ...
```

`AsyncClient` is the same on asyncio (`async with`, `await`, `async for`). Both are safe to
share between threads / tasks: one bucket per token and base URL paces them all.

Imports nothing from the server side, so `pip install frsync` (no extras) is enough.
"""

from frsync.client._async_client import AsyncClient
from frsync.client._base import (
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    FLXPOINT_BASE_URL,
    base_url_from_env,
)
from frsync.client._bucket import ClientBucket
from frsync.client._client import Client
from frsync.client._core import ClientStats
from frsync.client._errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    FieldError,
    FrsyncError,
    NotFoundError,
    Problem,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
    error_from_response,
)
from frsync.client._filters import FulfillmentRequestFilters
from frsync.client._models import (
    UNSET,
    AccountingSyncItem,
    AccountingSyncRequest,
    FulfillmentRequest,
    FulfillmentRequestStatus,
    HistoryEntry,
    Item,
    UnsetType,
)
from frsync.client._retry import RetryPolicy

__all__ = [
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "FLXPOINT_BASE_URL",
    "UNSET",
    "APIConnectionError",
    "APIStatusError",
    "AccountingSyncItem",
    "AccountingSyncRequest",
    "AsyncClient",
    "BadRequestError",
    "Client",
    "ClientBucket",
    "ClientStats",
    "FieldError",
    "FrsyncError",
    "FulfillmentRequest",
    "FulfillmentRequestFilters",
    "FulfillmentRequestStatus",
    "HistoryEntry",
    "Item",
    "NotFoundError",
    "Problem",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UnsetType",
    "base_url_from_env",
    "error_from_response",
]
