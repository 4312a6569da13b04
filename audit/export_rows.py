"""Checking an export file's event rows, line by line, in either format (``audit.export_file``
describes the file). Each row is checked the fast way first (``audit.fast_rows``) and, should
that not vouch for it, read again with the standard library and hashed by ``audit.chain``."""

import csv
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from audit.chain import CHAINED_FIELDS, event_hash, personal_digest
from audit.fast_rows import Link, csv_row, ndjson_row

COLUMNS = (*CHAINED_FIELDS, "personal", "prev_hash", "hash")
# CSV cells that may be null; every other cell always holds a value.
_NULLABLE_TEXT = ("actor_id", "actor_role", "target_type", "target_id", "request_id")


class Counted(Protocol):
    """Where the lines come from: ``count`` is the number of the last line handed out."""

    count: int


class Invalid(Exception):
    """Why a file fails, and where: the first failure found ends the check."""

    def __init__(self, reason: str, line: int | None = None, event_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line, self.event_id = reason, line, event_id


class RowChecker:
    """Checks rows one at a time: own hash, personal digest, id order; notes the first break in
    linkage, which only matters once the manifest says the file is a complete chain."""

    def __init__(self) -> None:
        self.count = 0
        self.first_prev: str | None = None
        self.last_hash: str | None = None
        self.last_id: int | None = None
        self.first_break: tuple[int, int] | None = None  # (line, id)

    def check(self, candidates: Iterable[dict[str, Any]], line: int) -> None:
        readings = iter(candidates)
        event = next(readings)
        event_id = event["id"]
        if not isinstance(event_id, int) or isinstance(event_id, bool):
            raise Invalid("an event id is not an integer", line)
        if self.last_id is not None and event_id <= self.last_id:
            raise Invalid("events are out of id order", line, event_id)
        if not all(isinstance(event.get(k), str) for k in ("prev_hash", "hash", "personal_digest")):
            raise Invalid("an event lacks its hashes", line, event_id)
        if not any(event_hash(e["prev_hash"], e) == e["hash"] for e in (event, *readings)):
            raise Invalid("an event's hash does not match its fields", line, event_id)
        personal = event["personal"]
        if personal is not None and personal_digest(personal) != event["personal_digest"]:
            raise Invalid("an event's personal values do not match their digest", line, event_id)
        self.link(Link(event_id, event["prev_hash"], event["hash"]), line)

    def link(self, row: Link, line: int) -> None:
        """Take a row whose own hashes hold: its place in id order, and in the chain."""
        if self.last_id is not None and row.event_id <= self.last_id:
            raise Invalid("events are out of id order", line, row.event_id)
        self.count += 1
        if self.first_prev is None:
            self.first_prev = row.prev_hash
        elif row.prev_hash != self.last_hash and self.first_break is None:
            self.first_break = (line, row.event_id)
        self.last_hash, self.last_id = row.hash, row.event_id


def check_ndjson_rows(lines: Iterable[bytes], numbers: Counted, rows: RowChecker) -> None:
    for line in lines:
        link = ndjson_row(line)
        if link is None:
            text = decoded(line, numbers.count)
            rows.check([_ndjson_reading(text, numbers.count)], numbers.count)
        else:
            rows.link(link, numbers.count)


def check_csv_rows(lines: Iterable[bytes], numbers: Counted, rows: RowChecker) -> None:
    reader = csv.reader((decoded(line, numbers.count) for line in lines), strict=True)
    try:
        for cells in reader:
            link = csv_row(cells)
            if link is None:
                rows.check(_csv_readings(cells, numbers.count), numbers.count)
            else:
                rows.link(link, numbers.count)
    except csv.Error as exc:
        raise Invalid(f"malformed CSV: {exc}", numbers.count) from exc


def decoded(line: bytes, number: int) -> str:
    try:
        return line.decode()
    except UnicodeDecodeError as exc:
        raise Invalid("a line is not valid UTF-8", number) from exc


def _ndjson_reading(text: str, line: int) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise Invalid("a line is not valid JSON", line) from exc
    if not isinstance(event, dict) or set(event) != set(COLUMNS):
        raise Invalid("a line is not an audit event with the export's fields", line)
    return event


def _csv_readings(cells: list[str], line: int) -> Iterator[dict[str, Any]]:
    """The row read with empty cells as null, then, should that not hash, the other readings of
    its empty nullable text cells (null or empty string)."""
    if len(cells) != len(COLUMNS):
        raise Invalid(f"a row has {len(cells)} cells, not {len(COLUMNS)}", line)
    raw = dict(zip(COLUMNS, cells, strict=True))
    try:
        event: dict[str, Any] = {
            **{name: raw[name] or None for name in COLUMNS},
            "id": int(raw["id"]),
            "personal_data": {"true": True, "false": False}[raw["personal_data"]],
            "changes": json.loads(raw["changes"]),
            "personal": json.loads(raw["personal"]) if raw["personal"] else None,
        }
    except (ValueError, KeyError) as exc:
        raise Invalid("a row has a malformed cell", line) from exc
    yield event
    empty = [name for name in _NULLABLE_TEXT if raw[name] == ""]
    for choice in itertools.product((None, ""), repeat=len(empty)):
        if any(value == "" for value in choice):
            yield {**event, **dict(zip(empty, choice, strict=True))}
