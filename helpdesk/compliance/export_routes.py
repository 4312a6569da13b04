"""HTTP for /audit/export: a workspace's trail as a streamed CSV or NDJSON file that a third
party can check offline (``helpdesk audit verify-file``; the format is in ``audit.export_file``).

The request's own transaction records ``audit.export`` and ends when the route returns, before
the body is sent. The file covers the trail up to and including that event, so its hash, sent in
the ``X-Audit-Chain-Head`` header before any row, is also the manifest's ``chain_head``. The body
is read in a transaction of its own, a single read-only snapshot, with ``COPY ... TO STDOUT``
(``audit.export_copy``) one row at a time, so the server holds one chunk whatever the size.
"""

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import psycopg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit import export_copy, export_file, queries
from audit.chain import timestamp
from audit.export_file import ExportFormat
from audit.models import AuditEvent
from auth.permissions import Permission
from helpdesk.compliance.audit_routes import to_filters
from helpdesk.compliance.schemas import AuditFilterParams
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RuntimeDep, Scope, require
from helpdesk.streaming import ClosingStream, tenant_snapshot
from tenants.context import TenantRef

router = APIRouter(prefix="/audit", tags=["audit"], route_class=AppRoute)

Exporter = Annotated[Scope, Depends(require(Permission.AUDIT_EXPORT))]
# Read at each request, so a test can make every row a chunk of its own.
CHUNK_BYTES = export_file.CHUNK_BYTES
CHAIN_HEAD_HEADER = "X-Audit-Chain-Head"
_MEDIA_TYPES = {ExportFormat.CSV: "text/csv", ExportFormat.NDJSON: "application/x-ndjson"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed: one line per event, then the manifest line "
        "(the ndjson file's last object, or the CSV's `#manifest ` line).",
        "content": {"text/csv": {}, "application/x-ndjson": {}},
        "headers": {
            CHAIN_HEAD_HEADER: {
                "description": "The chain head the file ends at (its manifest's chain_head).",
                "schema": {"type": "string"},
            }
        },
    },
    **error_responses(401, 403, 422),
}


@dataclass(frozen=True, slots=True)
class _Head:
    """The export's own audit event: the last link the file covers."""

    id: int
    hash: str


@router.get("/export", response_class=StreamingResponse, responses=_RESPONSES)
async def export_events(
    scope: Exporter,
    runtime: RuntimeDep,
    params: Annotated[AuditFilterParams, Query()],
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.NDJSON,
) -> StreamingResponse:
    filters = params.model_dump(mode="json", exclude_none=True)
    await scope.audit(
        "audit.export",
        "audit_event",
        changes={"format": export_format.value, "filters": filters},
        personal_data=True,
    )
    head = await scope.run(_own_event)
    tenant = scope.caller.workspace
    exported_at = datetime.now(UTC)
    body = _file(
        runtime.sessions,
        tenant,
        to_filters(params),
        export_format,
        head=head,
        filters=filters,
        exported_at=timestamp(exported_at),
        chunk_bytes=CHUNK_BYTES,
    )
    name = f"audit-{tenant.slug}-{exported_at:%Y%m%dT%H%M%SZ}.{export_format.value}"
    return ClosingStream(
        body,
        media_type=_MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            CHAIN_HEAD_HEADER: head.hash,
            "Cache-Control": "no-store",
        },
    )


def _own_event(session: Session) -> _Head:
    # The chain's append lock, taken by scope.audit, is held until this transaction ends, so the
    # newest event this transaction sees is the one it has just written.
    row = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).one()
    return _Head(id=row.id, hash=row.hash)


def _file(
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    selection: queries.EventFilters,
    export_format: ExportFormat,
    *,
    head: _Head,
    filters: dict[str, Any],
    exported_at: str,
    chunk_bytes: int,
) -> Generator[bytes, None, None]:
    with tenant_snapshot(sessions, tenant) as session:
        start = queries.chain_start(session)
        # The engine's driver is psycopg: its COPY API reads the rows as the server sends them.
        connection = cast(
            psycopg.Connection[Any], session.connection().connection.driver_connection
        )
        lines = export_copy.copy_lines(connection, export_format, selection, through_id=head.id)
        # Closed before the transaction ends, however the download ends: a COPY left running
        # would keep the connection busy, and the rollback would wait on it for ever.
        with closing(lines):
            yield from export_file.export_chunks(
                lines,
                export_format,
                workspace=tenant.slug,
                chain_start=start,
                chain_head=head.hash,
                complete_chain=not filters,
                filters=filters,
                exported_at=exported_at,
                chunk_bytes=chunk_bytes,
            )
