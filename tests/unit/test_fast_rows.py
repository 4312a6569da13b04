"""The export check's fast path (``audit.fast_rows``) with no database: where orjson writes the
canonical bytes, where it does not (and the row is then read again by ``audit.chain``, so the
file still verifies), and that it vouches only for rows whose hashes hold."""

import csv
import io
import json
from typing import Any

import pytest

from audit.chain import GENESIS, canonical, event_hash, personal_digest
from audit.export_file import ExportFormat, export_chunks, verify_export
from audit.export_rows import COLUMNS
from audit.fast_rows import Link, csv_row, ndjson_row

pytestmark = pytest.mark.unit

# Values an event may hold, and whether orjson (sorted keys) writes ``canonical``'s bytes.
VALUES: list[tuple[Any, bool]] = [
    ("plain", True),
    ("zoë, 😀, € and \u2028", True),
    ('quote " backslash \\ tab \t newline \n nul \x00 unit \x1f del \x7f', True),
    ({"b": 1, "a": {"d": [1, None, True], "c": "x"}}, True),
    ({"é": 1, "e": 2, "Z": 3, "😀": 4, "\uffff": 5}, True),
    (2**63 - 1, True),
    (-(2**63), True),
    (1.5, True),
    (0.1, True),
    ([], True),
    ({}, True),
    (1e-07, False),  # canonical writes 1e-07, orjson 1e-7
    (2**64, False),  # orjson reads no integer past 64 bits
]  # fmt: skip


@pytest.mark.parametrize(("value", "same"), VALUES)
def test_orjson_writes_the_canonical_bytes_except_where_the_table_says(
    value: Any, same: bool
) -> None:
    event = _chain([{"changes": {"value": value}}])[0]
    assert (ndjson_row(_line(event, ExportFormat.NDJSON)) is not None) is same


def _chain(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events in the export's column order, chained from GENESIS, ids 1..n."""
    events, prev = [], GENESIS
    for n, extra in enumerate(changes, start=1):
        personal = {"actor_email": f"agent{n}@example.com", "ip": "10.0.0.1"}
        fields: dict[str, Any] = {
            "id": n,
            "occurred_at": f"2026-12-02T10:00:00.{n:06d}+00:00",
            "actor_id": None,
            "actor_role": "agent",
            "action": "ticket.update",
            "target_type": "ticket",
            "target_id": str(n),
            "outcome": "success",
            "request_id": None,
            "changes": {"status": "open"},
            "personal_data": True,
            "personal_digest": personal_digest(personal),
            **extra,
        }
        digest = event_hash(prev, fields)
        events.append({**fields, "personal": personal, "prev_hash": prev, "hash": digest})
        prev = digest
    return events


def _line(event: dict[str, Any], fmt: ExportFormat) -> bytes:
    """One row as the export writes it: PostgreSQL's JSON spacing, not canonical's."""
    if fmt is ExportFormat.NDJSON:
        return json.dumps(event, ensure_ascii=False).encode() + b"\n"
    cells = [
        "" if value is None else canonical(value) if isinstance(value, dict | bool) else str(value)
        for value in event.values()
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode()


def _file(events: list[dict[str, Any]], fmt: ExportFormat) -> bytes:
    return b"".join(
        export_chunks(
            (_line(event, fmt) for event in events),
            fmt,
            workspace="acme",
            chain_start=GENESIS,
            chain_head=events[-1]["hash"],
            complete_chain=True,
            filters={},
            exported_at="2026-12-02T10:00:00+00:00",
        )
    )


def _fast(line: bytes, fmt: ExportFormat) -> Link | None:
    if fmt is ExportFormat.NDJSON:
        return ndjson_row(line)
    return csv_row(next(csv.reader([line.decode()])))


FORMATS = [ExportFormat.NDJSON, ExportFormat.CSV]
PLAIN = {"changes": {"status": "pending", "tags": ["vpn", "zoë"]}}


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_fast_path_vouches_for_an_intact_row(fmt: ExportFormat) -> None:
    event = _chain([PLAIN])[0]
    assert tuple(event) == COLUMNS  # so the CSV row's cells are where the export puts them
    assert _fast(_line(event, fmt), fmt) == Link(1, GENESIS, event["hash"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "edit",
    [
        {"action": "ticket.delete"},
        {"changes": {"status": "closed", "tags": ["vpn", "zoë"]}},
        {"personal": {"actor_email": "someone@example.com", "ip": "10.0.0.1"}},
        {"prev_hash": "ab" * 32},
        {"hash": "ab" * 32},
        {"id": True},
    ],
)
def test_the_fast_path_declines_an_edited_row(fmt: ExportFormat, edit: dict[str, Any]) -> None:
    event = _chain([PLAIN])[0]
    assert _fast(_line({**event, **edit}, fmt), fmt) is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_only_audit_chain_can_read_still_verify(fmt: ExportFormat) -> None:
    events = _chain([PLAIN, {"changes": {"rate": 1e-07}}, {"changes": {"big": 2**70}}, PLAIN])
    assert [_fast(_line(event, fmt), fmt) is None for event in events] == [
        False,
        True,
        True,
        False,
    ]
    verdict = verify_export(io.BytesIO(_file(events, fmt)))
    assert (verdict.valid, verdict.rows) == (True, 4), verdict.reason


def test_an_empty_string_in_a_csv_cell_is_left_to_the_full_reading() -> None:
    events = _chain([{"request_id": ""}])
    line = _line(events[0], ExportFormat.CSV)
    assert _fast(line, ExportFormat.CSV) is None
    verdict = verify_export(io.BytesIO(_file(events, ExportFormat.CSV)))
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_row_out_of_id_order_fails_though_its_hash_holds(fmt: ExportFormat) -> None:
    events = _chain([PLAIN, PLAIN])
    events[1] = {**events[1], "id": 1}
    events[1]["hash"] = event_hash(events[1]["prev_hash"], events[1])
    verdict = verify_export(io.BytesIO(_file(events, fmt)))
    assert (verdict.valid, verdict.reason) == (False, "events are out of id order")
