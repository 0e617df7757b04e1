"""Test an accounting connector against a frsync sandbox: the pytest plugin's fixtures
(`frsync_sandbox`, `frsync_tenant`) and, without pytest, `Sandbox()`.

```python
from frsync.testing import Sandbox

with Sandbox() as sandbox:                    # starts `frsync serve --sandbox` on a free port
    tenant = sandbox.new_tenant(fulfillment_requests=3)
    tenant.fault(match={"method": "PATCH"}, action={"status": 503}, times=1)
    with tenant.client() as client:           # frsync.client.Client, retries the 503
        client.sync_accounting(tenant.fulfillment_request_ids[0], accounting_synced=True)
    tenant.assert_requests(method="PATCH", statuses=[503, 204])
```

Like the client, this talks to the server over HTTP only (or starts one as a process): it
imports nothing from the server side.
"""

from frsync.testing._admin import SandboxError
from frsync.testing.sandbox import Sandbox
from frsync.testing.tenant import Tenant

__all__ = ["Sandbox", "SandboxError", "Tenant"]
