"""A naive accounting connector on plain `httpx` — what `frsync certify` is for catching.

It does the job on a good day: lists the FRs not yet synced and records each. But it sends as
fast as it can (no pacing to the rate limit), never retries a 429, a 5xx or a dropped
connection, and keeps going after a 401. `frsync certify` fails it on exactly rate-limit,
transient-errors and revoked-token; it passes the other four.

    FRSYNC_BASE_URL=http://127.0.0.1:8000 FRSYNC_TOKEN=… python examples/connectors/naive.py
"""

from __future__ import annotations

import os

import httpx

PAGE = 500


def unsynced(http: httpx.Client) -> list[dict]:
    frs: list[dict] = []
    page = 1
    while True:
        params = {"filterAccountingSynced": "false", "filterPageSize": PAGE, "filterPageNumber": page}
        batch = http.get("/fulfillment-requests", params=params).json()
        frs += batch
        if len(batch) < PAGE:
            return frs
        page += 1


def main() -> None:
    base_url = os.environ.get("FRSYNC_BASE_URL", "http://127.0.0.1:8000")
    headers = {"X-API-TOKEN": os.environ["FRSYNC_TOKEN"]}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for fr in unsynced(http):
            body = {
                "accountingSynced": True,
                "externalAccountingId": f"QB-BILL-{fr['id']}",
                "items": [
                    {"id": item["id"], "externalAccountingItemId": f"QB-LINE-{item['id']}"}
                    for item in fr["fulfillmentRequestItems"]
                ],
            }
            try:
                answer = http.patch(f"/fulfillment-requests/{fr['id']}/accounting-sync", json=body)
                print(fr["id"], answer.status_code)
            except httpx.TransportError as error:
                print(fr["id"], "error:", error)


if __name__ == "__main__":
    main()
