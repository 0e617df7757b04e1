"""A well-behaved accounting connector on `frsync.client` — it passes every `frsync certify`
scenario.

It finds the FRs not yet synced, "books" each (here a stand-in that makes up ledger ids) and
records the result: synced, with an external id for the FR and for each item. The client paces
itself to the token's rate limit, waits out a 429's `Retry-After`, and retries 5xx answers and
dropped connections with backoff (a PATCH is safe to resend). A 400 means this FR's data is
refused: log it and move on — resending the same body cannot help. A 401 means the token is
gone: stop at once and exit non-zero.

    FRSYNC_BASE_URL=http://127.0.0.1:8000 FRSYNC_TOKEN=… python examples/connectors/good.py
"""

from __future__ import annotations

import os
import sys

from frsync.client import BadRequestError, Client, FrsyncError, UnauthorizedError


def book(fr_id: int, item_ids: list[int]) -> tuple[str, dict[int, str]]:
    """Your ledger's work: a bill for the FR and a line per item."""
    return f"QB-BILL-{fr_id}", {item_id: f"QB-LINE-{item_id}" for item_id in item_ids}


def main() -> int:
    refused = failed = synced = 0
    with Client(os.environ["FRSYNC_TOKEN"]) as client:  # base URL: $FRSYNC_BASE_URL
        try:
            for fr in client.iter_fulfillment_requests(accounting_synced=False):
                bill, lines = book(fr.id, [item.id for item in fr.fulfillment_request_items])
                try:
                    client.sync_accounting(
                        fr.id, accounting_synced=True, external_accounting_id=bill,
                        accounting_error=None, items=lines,
                    )
                    synced += 1
                except BadRequestError as error:
                    refused += 1
                    print(f"FR {fr.id} refused, not resent: {error}", file=sys.stderr)
                except UnauthorizedError:
                    raise
                except FrsyncError as error:  # retries spent: leave it for the next run
                    failed += 1
                    print(f"FR {fr.id} not recorded: {error}", file=sys.stderr)
        except UnauthorizedError as error:
            print(f"token refused, stopping: {error}", file=sys.stderr)
            return 1
    print(f"{synced} synced, {refused} refused, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
