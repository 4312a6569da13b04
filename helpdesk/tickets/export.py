"""Ticket export files: the tickets the list would show the caller, with the list's filters, as
CSV or NDJSON, read in batches and handed out a chunk at a time.

NDJSON holds one ticket per line exactly as the API shows it. CSV holds one row per ticket, the
customer spread over ``customer_id``, ``customer_email`` and ``customer_name`` and the tags
joined by ``"; "``; its columns follow ``TicketOut``, so a field the API gains is exported too.
A CSV cell that a spreadsheet would run as a formula is neutralised (see ``neutralise``).
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from audit.export_file import ExportFormat
from auth.caller import Caller
from helpdesk.customers.schemas import CustomerRef
from helpdesk.tickets import repository
from helpdesk.tickets.schemas import TicketFilters, TicketOut
from helpdesk.tickets.service import views, visibility

# Tickets read per query: one batch's rows, tags and customers are held at a time.
BATCH_SIZE = 500
CHUNK_BYTES = 64 * 1024
TAG_SEPARATOR = "; "

# What may open a formula in Excel, LibreOffice or Google Sheets (OWASP's CSV injection list:
# = + - @, tab and carriage return), with line feed and the full-width forms some locales
# accept as the same characters.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise(cell: str) -> str:
    """The cell as text no spreadsheet evaluates: one whose first character, or first after
    leading spaces, may open a formula gets a leading apostrophe (a spreadsheet's own mark
    for "this is text"). The NDJSON export keeps every value as it is."""
    if cell.lstrip(" ")[:1] in FORMULA_STARTS:
        return "'" + cell
    return cell


def csv_columns() -> list[str]:
    columns: list[str] = []
    for name in TicketOut.model_fields:
        if name == "customer":
            columns += [f"customer_{field}" for field in CustomerRef.model_fields]
        else:
            columns.append(name)
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return neutralise(TAG_SEPARATOR.join(str(item) for item in value))
    return neutralise(str(value))


def csv_cells(ticket: TicketOut) -> list[str]:
    fields = ticket.model_dump(mode="json")
    customer = fields.pop("customer") or {}
    for field in CustomerRef.model_fields:
        fields[f"customer_{field}"] = customer.get(field)
    return [_cell(fields[column]) for column in csv_columns()]


def visible_tickets(
    session: Session, caller: Caller, filters: TicketFilters, *, batch_size: int = BATCH_SIZE
) -> Iterator[TicketOut]:
    """Every ticket the caller may see that the filters select, in id order, ``batch_size`` at
    a time, through the same query the list pages with."""
    who = visibility(caller)
    # One moment for the whole file: its SLA states and filters agree from first row to last.
    now = datetime.now(UTC)
    after_id: int | None = None
    while rows := repository.list_visible(
        session, who, filters, after_id=after_id, limit=batch_size, now=now
    ):
        yield from (view.out(now) for view in views(session, rows))
        after_id = rows[-1].id
        # Keep one batch in memory, however many tickets the file holds.
        session.expunge_all()


def export_chunks(
    tickets: Iterable[TicketOut], export_format: ExportFormat, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The file's bytes, in chunks of about ``chunk_bytes``."""
    cells = io.StringIO()
    writer = csv.writer(cells, lineterminator="\r\n")
    buffer = bytearray()
    if export_format is ExportFormat.CSV:
        writer.writerow(csv_columns())
    for ticket in tickets:
        if export_format is ExportFormat.CSV:
            writer.writerow(csv_cells(ticket))
        else:
            cells.write(json.dumps(ticket.model_dump(mode="json"), ensure_ascii=False) + "\n")
        buffer += cells.getvalue().encode()
        cells.seek(0)
        cells.truncate()
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    buffer += cells.getvalue().encode()
    yield bytes(buffer)
