"""`frsync load` of JSON Lines files and `frsync demo --size`: streamed in batches, all or
nothing, bad lines named by number, the same data on every reload, plain output off a TTY."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import msgspec
import pytest

from frsync import generate
from frsync.backends import open_store
from frsync.bulk import Loader, UniqueIds
from frsync.cli import main
from frsync.config import Settings
from frsync.domain import Principal
from frsync.fixture import FixtureError
from frsync.store import FrQuery, migrate
from tests.support import BASIC_FIXTURE

SCOPES = {key: BASIC_FIXTURE[key] for key in ("accounts", "sources", "channels", "tokens")}
FRS = BASIC_FIXTURE["fulfillmentRequests"]


def frsync(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def write_lines(path: Path, frs: list[dict[str, Any]], bad: dict[int, str] | None = None) -> str:
    """One FR per line; `bad` replaces line N (1-based) with the given text."""
    lines = [msgspec.json.encode(fr).decode() for fr in frs]
    for number, text in (bad or {}).items():
        lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    scopes = tmp_path / "scopes.json"
    scopes.write_bytes(msgspec.json.encode(SCOPES))
    return str(scopes), write_lines(tmp_path / "frs.jsonl", FRS)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'load.db'}"


def dump(url: str) -> dict[str, Any]:
    """What the store holds: every FR as the API shows it, and the tokens."""
    migrate(url)

    async def read() -> dict[str, Any]:
        store = await open_store(Settings(database_url=url))
        try:
            frs = []
            for account in range(1, 7):
                owner = Principal(0, "account", account)
                frs += await store.list_fulfillment_requests(owner, FrQuery(page_size=500))
            tokens = [(t.token_type, t.scope_id) for t in await store.list_tokens()]
            return {"frs": msgspec.to_builtins(frs), "tokens": tokens}
        finally:
            await store.close()

    return asyncio.run(read())


def test_json_lines_load_with_their_scopes_file_and_reload_changes_nothing(
    files: tuple[str, str], db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert frsync("load", *files, "--database-url", db) == 0
    first = dump(db)
    assert [fr["id"] for fr in first["frs"]] == [fr["id"] for fr in FRS]
    assert len(first["tokens"]) == len(SCOPES["tokens"])
    assert frsync("load", *reversed(files), "--database-url", db) == 0  # scopes first anyway
    assert dump(db) == first
    assert f"{len(FRS)} fulfillment requests" in capsys.readouterr().out


BAD_LINES = [
    ('{"id": 1, "accountId": ', "truncated"),
    ("[1, 2]", "Expected `object`"),
    ('{"id": 900, "accountId": 1}', "missing required field"),
    (msgspec.json.encode({**FRS[1], "sourceId": "ten"}).decode(), "sourceId"),
    (msgspec.json.encode({**FRS[1], "status": "Lost"}).decode(), "status"),
    (msgspec.json.encode({**FRS[1], "generatedAt": "yesterday"}).decode(), "generatedAt"),
    (msgspec.json.encode({**FRS[1], "shippedAt": None}).decode(), "shippedAt"),
    (msgspec.json.encode({**FRS[1], "sourceId": 30}).decode(), "source 30 belongs to another"),
    (msgspec.json.encode(FRS[0]).decode(), "fulfillment request id 221 appears more than once"),
    (msgspec.json.encode({**FRS[1], "id": 999}).decode(), "item id 12320 appears more than once"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[m for _, m in BAD_LINES])
def test_a_bad_line_in_the_middle_loads_nothing_and_is_named_by_number(
    tmp_path: Path, files: tuple[str, str], db: str, capsys: pytest.CaptureFixture[str],
    line: str, message: str,
) -> None:  # fmt: skip
    lines = write_lines(tmp_path / "bad.jsonl", FRS, bad={6: line})
    assert frsync("load", files[0], lines, "--database-url", db) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl: line 6" in err and message in err and "nothing was loaded" in err
    assert dump(db) == {"frs": [], "tokens": []}  # not even the scopes file landed


def test_a_row_naming_a_source_nobody_has_loads_nothing(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = write_lines(tmp_path / "frs.jsonl", [{**FRS[0], "sourceId": 4242}])
    scopes = tmp_path / "scopes.json"
    scopes.write_bytes(msgspec.json.encode(SCOPES))
    assert frsync("load", str(scopes), lines, "--database-url", db) == 2
    assert "nothing was loaded" in capsys.readouterr().err
    assert dump(db)["frs"] == []


def test_blank_lines_and_crlf_are_fine_and_output_off_a_tty_is_plain(
    tmp_path: Path, files: tuple[str, str], db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "crlf.jsonl"
    lines.write_bytes(b"\r\n".join([b"", *(msgspec.json.encode(fr) for fr in FRS), b"  "]))
    assert frsync("load", files[0], str(lines), "--database-url", db) == 0
    captured = capsys.readouterr()
    assert "\x1b[" not in captured.out + captured.err  # no live bar, no colour codes
    assert captured.out.count("\n") == 1 and captured.out.startswith("loaded ")
    assert len(dump(db)["frs"]) == len(FRS)


async def test_a_bad_line_after_several_batches_rolls_the_earlier_ones_back(
    tmp_path: Path, settings: Settings
) -> None:
    scopes = tmp_path / "scopes.json"
    scopes.write_bytes(msgspec.json.encode(generate.scopes()))
    frs = msgspec.to_builtins(list(generate.fulfillment_requests(40)))
    lines = tmp_path / "frs.jsonl"
    write_lines(lines, frs, bad={37: "{}"})
    seen: list[tuple[int, int]] = []
    loader = Loader([lines, scopes], now=0, batch_size=5, progress=lambda b, n: seen.append((b, n)))
    store = await open_store(settings)
    try:
        with pytest.raises(FixtureError, match=r"frs\.jsonl: line 37: "):
            await store.load(loader.batches())
        assert len(seen) == 7 and all(n == 5 for _, n in seen)  # 7 batches were written…
        owner = Principal(0, "account", 1)
        assert await store.count_fulfillment_requests(owner, FrQuery()) == 0  # …and undone
    finally:
        await store.close()


def test_unique_ids_cost_little_in_order_and_still_catch_repeats_out_of_order() -> None:
    seen = UniqueIds()
    assert all(seen.add(n) for n in (5, 9, 12, 3, 7, 100))
    assert not any(seen.add(n) for n in (5, 9, 12, 3, 7, 100))
    assert seen.add(8) and not seen.add(8)


def test_demo_size_generates_the_same_realistic_data_every_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    assert frsync("demo", "--size", "300", "--database-url", first) == 0
    assert frsync("demo", "--size", "300", "--database-url", second) == 0
    frs = dump(first)["frs"]
    assert frs == dump(second)["frs"] and len(frs) == 24 + 300
    assert 221 in {fr["id"] for fr in frs}  # the small demo is there too
    assert "/fulfillment-requests/221/accounting-sync" in capsys.readouterr().out
    assert {fr["accountId"] for fr in frs} == {1, 2, 3, 4, 5, 6}
    states = {(fr["accountingSynced"], bool(fr["accountingError"])) for fr in frs}
    assert {(True, False), (None, False), (False, True), (False, False)} <= states


def test_demo_jsonl_writes_files_that_load_into_the_same_frs(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "big.jsonl"
    assert frsync("demo", "--size", "120", "--jsonl", str(out)) == 0
    scopes = generate.accounts_path(out)
    assert str(scopes) in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 120
    assert frsync("load", str(scopes), str(out), "--database-url", db) == 0
    seeded = f"sqlite:///{tmp_path / 'seeded.db'}"
    assert frsync("demo", "--size", "120", "--database-url", seeded) == 0
    generated = [fr for fr in dump(seeded)["frs"] if fr["id"] >= generate.FIRST_FR_ID]
    assert dump(db)["frs"] == generated


def test_demo_jsonl_needs_a_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert frsync("demo", "--jsonl", str(tmp_path / "x.jsonl")) == 2
    assert "--size" in capsys.readouterr().err


def test_fixture_files_still_load_alone_and_name_the_bad_entry(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = copy.deepcopy(BASIC_FIXTURE)
    fixture["fulfillmentRequests"][2]["status"] = "Lost"
    path = tmp_path / "fixture.json"
    path.write_bytes(msgspec.json.encode(fixture))
    assert frsync("load", str(path), "--database-url", db) == 2
    assert "fixture.json: fulfillmentRequests[2].status" in capsys.readouterr().err


def test_an_fr_number_with_a_nul_character_loads_nothing_and_says_where(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A load sends a batch's FRs as one JSON parameter (SQLite), where U+0000 would end the
    number silently; PostgreSQL refuses it. Refused before either, with its place."""
    fixture = copy.deepcopy(BASIC_FIXTURE)
    fixture["fulfillmentRequests"][1]["fulfillmentRequestNumber"] = "FR-\x00-222"
    path = tmp_path / "fixture.json"
    path.write_bytes(msgspec.json.encode(fixture))
    assert frsync("load", str(path), "--database-url", db) == 2
    assert "fulfillmentRequests[1].fulfillmentRequestNumber: must not contain U+0000" in (
        capsys.readouterr().err
    )
