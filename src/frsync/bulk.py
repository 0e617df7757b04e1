"""Streaming loads (`frsync load`): fixture files and JSON Lines of FRs, in batches.

A fixture file (`.json`, SPEC §8) is small and read whole. A JSON Lines file (`.jsonl`,
`.ndjson`) holds one FR per line, in the fixture's FR shape, and may be far larger than
memory: it is read line by line and handed to `Store.load` in batches, which the store
writes in one transaction, so a bad line anywhere leaves the database as it was.

Every line is checked as a fixture entry is, and across the whole load: ids are unique, and
an FR's source and channel belong to its account when the files say whose they are.
Errors are `FixtureError`s naming the file and the line.
"""

from __future__ import annotations

import array
import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from frsync.fixture import (
    FixtureError,
    FulfillmentRequestIn,
    decode_fixture,
    fixture_to_rows,
    fr_rows,
    json_error,
)
from frsync.store.base import LoadData

BATCH_SIZE = 5000
JSONL_SUFFIXES = (".jsonl", ".ndjson")
Progress = Callable[[int, int], None]  # (bytes read, FRs read) since the last call


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES


class UniqueIds:
    """Ids seen so far, to refuse one seen twice. Ids that arrive in increasing order (the
    usual case: files are written in id order) cost 8 bytes each, not a set entry's ~60,
    which keeps a 3-million-item file's check in tens of megabytes."""

    def __init__(self) -> None:
        self._ascending = array.array("q")
        self._others: set[int] = set()

    def add(self, value: int) -> bool:
        """Remember `value`; False when it was already there."""
        ascending = self._ascending
        if not ascending or value > ascending[-1]:
            ascending.append(value)
            return True
        if value in self._others:
            return False
        index = bisect.bisect_left(ascending, value)
        if index < len(ascending) and ascending[index] == value:
            return False
        self._others.add(value)
        return True


@dataclass
class Totals:
    """What a load wrote, for the summary line."""

    fulfillment_requests: int = 0
    items: int = 0
    tokens: int = 0


@dataclass
class _Owners:
    """Which account each source and channel named in the fixture files belongs to."""

    source: dict[int, int] = field(default_factory=dict)
    channel: dict[int, int] = field(default_factory=dict)

    def check(self, fr: FulfillmentRequestIn) -> str | None:
        if self.source.get(fr.source_id, fr.account_id) != fr.account_id:
            return f"source {fr.source_id} belongs to another account"
        channel = fr.channel_id
        if channel is not None and self.channel.get(channel, fr.account_id) != fr.account_id:
            return f"channel {channel} belongs to another account"
        return None


class Loader:
    """Turns fixture and JSON Lines files into load batches, checking as it goes.

    Fixture files come first, whatever their order on the command line, so that the FRs in
    the JSON Lines files find their accounts, sources and channels already written.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        now: int,
        batch_size: int = BATCH_SIZE,
        progress: Progress | None = None,
    ) -> None:
        self.fixtures = [p for p in paths if not is_jsonl(p)]
        self.lines = [p for p in paths if is_jsonl(p)]
        self.now, self.batch_size = now, batch_size
        self.progress = progress or (lambda _bytes, _frs: None)
        self.totals = Totals()
        self._owners = _Owners()
        self._fr_ids, self._item_ids = UniqueIds(), UniqueIds()

    def line_bytes(self) -> int:
        """Size of the JSON Lines files: what the progress is measured against."""
        return sum(path.stat().st_size for path in self.lines)

    def batches(self) -> Iterator[LoadData]:
        for path in self.fixtures:
            yield self._fixture(path)
        for path in self.lines:
            yield from self._json_lines(path)

    def _fixture(self, path: Path) -> LoadData:
        try:
            data = fixture_to_rows(decode_fixture(path.read_bytes()), now=self.now)
        except FixtureError as error:
            raise FixtureError(f"{path}: {error}") from None
        self._owners.source.update((row[0], row[1]) for row in data.sources)
        self._owners.channel.update((row[0], row[1]) for row in data.channels)
        for fr_row in data.fulfillment_requests:
            self._remember(fr_row[0], self._fr_ids, f"{path}: fulfillment request")
        for item_row in data.items:
            self._remember(item_row[0], self._item_ids, f"{path}: item")
        self._count(data)
        return data

    def _json_lines(self, path: Path) -> Iterator[LoadData]:
        decode = msgspec.json.Decoder(FulfillmentRequestIn).decode
        batch, size = LoadData(), 0
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                size += len(line)
                if line.isspace():
                    continue
                try:
                    self._add_line(decode(line), batch, number)
                except (msgspec.DecodeError, msgspec.ValidationError) as error:
                    raise FixtureError(f"{path}: line {number}: {json_error(error)}") from None
                except FixtureError as error:
                    raise FixtureError(f"{path}: {error}") from None
                if len(batch.fulfillment_requests) == self.batch_size:
                    yield self._flush(batch, size)
                    batch, size = LoadData(), 0
        yield self._flush(batch, size)

    def _add_line(self, fr: FulfillmentRequestIn, batch: LoadData, number: int) -> None:
        where = f"line {number}"
        problem = self._owners.check(fr)
        if problem:
            raise FixtureError(f"{where}: {problem}")
        row, items = fr_rows(fr, where)
        self._remember(fr.id, self._fr_ids, f"{where}: fulfillment request")
        for item in items:
            self._remember(item[0], self._item_ids, f"{where}: item")
        batch.fulfillment_requests.append(row)
        batch.items.extend(items)

    def _flush(self, batch: LoadData, size: int) -> LoadData:
        self._count(batch)
        self.progress(size, len(batch.fulfillment_requests))
        return batch

    def _count(self, data: LoadData) -> None:
        self.totals.fulfillment_requests += len(data.fulfillment_requests)
        self.totals.items += len(data.items)
        self.totals.tokens += len(data.tokens)

    @staticmethod
    def _remember(value: int, seen: UniqueIds, what: str) -> None:
        if not seen.add(value):
            raise FixtureError(f"{what} id {value} appears more than once in this load")
