"""Audit export rows shaped by PostgreSQL and streamed with ``COPY ... TO STDOUT``.

Building one Python object per event held the export to about 10k events a second; here the
server writes each line in the file's form and the app only passes the bytes on, one ``COPY``
row at a time, so memory stays flat and the rate is the database's.

- csv: ``COPY`` in CSV form gives the file's rows directly: the columns in ``COLUMNS`` order,
  ``occurred_at`` as ``audit.chain.timestamp`` writes it, booleans as ``true``/``false``, JSON
  cells as JSON text, null as an empty cell.
- ndjson: one ``row_to_json`` per event, keys in ``COLUMNS`` order. ``COPY`` in its text
  form would escape the JSON's backslashes, so it runs in CSV form with a delimiter and a quote
  character (``\\x01``, ``\\x02``) that JSON text cannot hold unescaped: a field is quoted only
  when it holds one of them or a line break, and JSON escapes all of those inside strings.

Either way a row is the same JSON values the chain hashed (PostgreSQL's JSON spacing differs
from ``canonical``, which the checker recomputes), so files verify with ``audit.export_file``.
The filters are bound client-side by psycopg (``COPY`` takes no server-side parameters) and
every identifier here is a constant.
"""

from collections.abc import Generator
from typing import Any

import psycopg
from psycopg import sql

from audit.export_file import ExportFormat
from audit.queries import EventFilters

_OCCURRED_AT = sql.SQL(
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
)
_CSV_COLUMNS = sql.SQL(", ").join(
    [
        sql.SQL("id"),
        _OCCURRED_AT,
        sql.SQL("actor_id, actor_role, action, target_type, target_id, outcome, request_id"),
        sql.SQL("changes::text"),
        sql.SQL("CASE WHEN personal_data THEN 'true' ELSE 'false' END"),
        sql.SQL("personal_digest, personal::text, prev_hash, hash"),
    ]
)
# The same columns by name, whose record row_to_json writes compactly, keys in column order.
_NDJSON_COLUMNS = sql.SQL(", ").join(
    [
        sql.SQL("id"),
        sql.SQL("{} AS occurred_at").format(_OCCURRED_AT),
        sql.SQL("actor_id, actor_role, action, target_type, target_id, outcome, request_id"),
        sql.SQL("changes, personal_data, personal_digest, personal, prev_hash, hash"),
    ]
)
_OPTIONS = {
    ExportFormat.CSV: sql.SQL("FORMAT csv"),
    ExportFormat.NDJSON: sql.SQL("FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02'"),
}
# filter field: (column, operator)
_CONDITIONS: dict[str, tuple[str, str]] = {
    "actor_id": ("actor_id", "="),
    "action": ("action", "="),
    "target_type": ("target_type", "="),
    "target_id": ("target_id", "="),
    "outcome": ("outcome", "="),
    "since": ("occurred_at", ">="),
    "until": ("occurred_at", "<"),
}


def copy_statement(
    export_format: ExportFormat, filters: EventFilters, *, through_id: int
) -> tuple[sql.Composed, dict[str, Any]]:
    """The ``COPY`` of the events the filters select, up to ``through_id``, in id order, and
    its parameters."""
    params: dict[str, Any] = {"through_id": through_id}
    conditions: list[sql.Composable] = [sql.SQL("id <= %(through_id)s")]
    for field, (column, operator) in _CONDITIONS.items():
        value = getattr(filters, field)
        if value is not None:
            params[field] = value
            conditions.append(
                sql.SQL("{} {} {}").format(
                    sql.Identifier(column), sql.SQL(operator), sql.Placeholder(field)
                )
            )
    selected = sql.SQL("SELECT {} FROM audit_events WHERE {} ORDER BY id").format(
        _CSV_COLUMNS if export_format is ExportFormat.CSV else _NDJSON_COLUMNS,
        sql.SQL(" AND ").join(conditions),
    )
    if export_format is ExportFormat.NDJSON:
        selected = sql.SQL("SELECT row_to_json(e) FROM ({}) e").format(selected)
    statement = sql.SQL("COPY ({}) TO STDOUT WITH ({})").format(selected, _OPTIONS[export_format])
    return statement, params


def copy_lines(
    connection: psycopg.Connection[Any],
    export_format: ExportFormat,
    filters: EventFilters,
    *,
    through_id: int,
) -> Generator[bytes, None, None]:
    """The file's event lines, one per ``COPY`` row, read as the server sends them. Runs in
    the connection's open transaction (its snapshot and tenant scope)."""
    statement, params = copy_statement(export_format, filters, through_id=through_id)
    with connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        for row in copy:
            yield bytes(row)
