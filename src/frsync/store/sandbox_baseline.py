"""What a sandbox reset goes back to: every load records the state it leaves, in its own
transaction. The sandbox (frsync.sandbox) reads this baseline; the store only writes it, so
the store imports nothing of the sandbox."""

from __future__ import annotations

BASELINE_MARK = "baseline_history_id"
_BASELINE_FR_COLUMNS = (
    "accounting_synced, external_accounting_id, accounting_error, accounting_synced_at, updated_at"
)
TAKE_BASELINE = (
    "DELETE FROM sandbox_baseline_frs",
    f"INSERT INTO sandbox_baseline_frs (id, {_BASELINE_FR_COLUMNS})"
    f" SELECT id, {_BASELINE_FR_COLUMNS} FROM fulfillment_requests",
    "DELETE FROM sandbox_baseline_items",
    "INSERT INTO sandbox_baseline_items (id, fulfillment_request_id, external_accounting_item_id)"
    " SELECT id, fulfillment_request_id, external_accounting_item_id"
    " FROM fulfillment_request_items",
    "INSERT INTO sandbox_state (name, value)"
    f" SELECT '{BASELINE_MARK}', COALESCE(MAX(id), 0) FROM accounting_history WHERE true"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
)
