"""`frsync load | demo | token`: exit codes, messages, idempotence, nothing half-done."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import msgspec
import pytest

from frsync.backends import open_store
from frsync.cli import main
from frsync.config import Settings
from frsync.domain import Principal
from frsync.store import FrQuery, migrate
from tests.support import BASIC_FIXTURE


def frsync(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def dump(url: str) -> dict:
    """Every FR (through the store, as the API would show them) and every token."""
    migrate(url)

    async def read() -> dict:
        store = await open_store(Settings(database_url=url))
        try:
            frs = []
            for account in (1, 2):
                everyone = Principal(0, "account", account)
                frs += await store.list_fulfillment_requests(everyone, FrQuery(page_size=500))
            tokens = await store.list_tokens()
            return {
                "frs": msgspec.to_builtins(frs),
                "tokens": [(t.id, t.token_type, t.scope_id) for t in tokens],
            }
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'admin.db'}"


def write(tmp_path: Path, data: object, name: str = "fixture.json") -> str:
    path = tmp_path / name
    path.write_bytes(msgspec.json.encode(data))
    return str(path)


def test_loading_the_same_fixture_twice_leaves_the_same_data(tmp_path: Path, db: str) -> None:
    fixture = write(tmp_path, BASIC_FIXTURE)
    assert frsync("load", fixture, "--database-url", db) == 0
    first = dump(db)
    assert frsync("load", fixture, "--database-url", db) == 0
    assert dump(db) == first
    assert len(first["frs"]) == len(BASIC_FIXTURE["fulfillmentRequests"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda f: f["fulfillmentRequests"][3].update(sourceId="ten"),
            "fulfillmentRequests[3].sourceId",
        ),
        (
            lambda f: f["fulfillmentRequests"][2].update(status="Lost"),
            "fulfillmentRequests[2].status",
        ),
        (
            lambda f: f["fulfillmentRequests"][1].update(generatedAt="yesterday"),
            "fulfillmentRequests[1].generatedAt",
        ),
        (
            lambda f: f["fulfillmentRequests"][4]["items"][0].pop("sku"),
            "fulfillmentRequests[4].items[0]",
        ),
        (
            lambda f: f["fulfillmentRequests"][0].update(sourceId=30),
            "source 30 belongs to another account",
        ),
        (
            lambda f: f["fulfillmentRequests"].append(copy.deepcopy(f["fulfillmentRequests"][0])),
            "appears more than once",
        ),
        (lambda f: f["tokens"][0].update(token="short"), "tokens[0].token"),
        (lambda f: f.update(extra=[]), "extra"),
    ],
)
def test_a_malformed_fixture_is_rejected_whole_naming_the_entry(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str], mutate, message: str
) -> None:
    fixture = copy.deepcopy(BASIC_FIXTURE)
    fixture["fulfillmentRequests"][0]["id"] = 777  # a row that must not land
    mutate(fixture)
    assert frsync("load", write(tmp_path, fixture), "--database-url", db) == 2
    assert message in capsys.readouterr().err
    assert dump(db)["frs"] == []


def test_a_reference_to_a_missing_account_loads_nothing(tmp_path: Path, db: str, capsys) -> None:
    fixture = copy.deepcopy(BASIC_FIXTURE)
    fixture["accounts"] = fixture["accounts"][:1]  # account 2 is gone, its rows remain
    fixture["sources"] = [s for s in fixture["sources"] if s["accountId"] == 1]
    assert frsync("load", write(tmp_path, fixture), "--database-url", db) == 2
    assert "nothing was loaded" in capsys.readouterr().err
    assert dump(db)["frs"] == []


def test_load_of_a_missing_file_is_a_usage_error(db: str, capsys) -> None:
    assert frsync("load", "/no/such/file.json", "--database-url", db) == 2
    assert "cannot read" in capsys.readouterr().err


def test_token_create_prints_once_and_list_never_shows_it(tmp_path: Path, db: str, capsys) -> None:
    assert frsync("load", write(tmp_path, BASIC_FIXTURE), "--database-url", db) == 0
    capsys.readouterr()
    assert frsync("token", "create", "--type", "source", "--id", "10", "--database-url", db) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("frs_") and len(token) >= 40  # 256 random bits
    assert frsync("token", "list", "--database-url", db) == 0
    listing = capsys.readouterr().out
    assert token not in listing and "source" in listing
    token_id = str(len(BASIC_FIXTURE["tokens"]) + 1)
    assert frsync("token", "revoke", token_id, "--database-url", db) == 0
    assert frsync("token", "revoke", token_id, "--database-url", db) == 2


def test_token_for_a_missing_scope_is_refused(tmp_path: Path, db: str, capsys) -> None:
    assert frsync("load", write(tmp_path, BASIC_FIXTURE), "--database-url", db) == 0
    assert frsync("token", "create", "--type", "channel", "--id", "999", "--database-url", db) == 2
    assert "no channel with id 999" in capsys.readouterr().err


def test_demo_seeds_the_reference_ids_and_prints_a_working_curl(db: str, capsys) -> None:
    assert frsync("demo", "--database-url", db) == 0
    out = capsys.readouterr().out
    assert "/fulfillment-requests/221/accounting-sync" in out
    assert '"id": 12312' in out
    frs = {fr["id"]: fr for fr in dump(db)["frs"]}
    assert 12312 in [i["id"] for i in frs[221]["fulfillmentRequestItems"]]
    assert 20 <= len(frs) <= 60
    assert frsync("demo", "--database-url", db) == 0  # again: same data, fresh tokens
    assert len(dump(db)["frs"]) == len(frs)
