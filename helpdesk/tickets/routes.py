"""HTTP for /tickets."""

from collections.abc import Generator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from audit.export_file import ExportFormat
from auth.caller import Caller
from auth.permissions import Permission
from helpdesk.core.pagination import (
    Limit,
    decode_cursor,
    decode_key_cursor,
    encode_key_cursor,
    id_page,
    invalid_cursor,
    row_id_of,
)
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RowId, RuntimeDep, Scope, require
from helpdesk.streaming import ClosingStream, tenant_snapshot
from helpdesk.tickets import bulk, export, service
from helpdesk.tickets.schemas import (
    BulkIn,
    BulkOut,
    TicketFilters,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketPatch,
)
from helpdesk.tickets.service import QueuePosition

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=AppRoute)

Reader = Annotated[Scope, Depends(require(Permission.TICKETS_READ))]
Creator = Annotated[Scope, Depends(require(Permission.TICKETS_CREATE))]
Updater = Annotated[Scope, Depends(require(Permission.TICKETS_UPDATE))]
Deleter = Annotated[Scope, Depends(require(Permission.TICKETS_DELETE))]
Exporter = Annotated[Scope, Depends(require(Permission.TICKETS_EXPORT))]
BulkChanger = Annotated[Scope, Depends(require(Permission.TICKETS_BULK))]
Cursor = Annotated[str | None, Query(max_length=64)]


async def _audited_page(scope: Scope, tickets: list[TicketOut], limit: int) -> TicketPage:
    items, next_cursor = id_page(tickets, limit)
    await scope.audit("ticket.list", "ticket", changes={"count": len(items)}, personal_data=True)
    return TicketPage(items=items, next_cursor=next_cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 413, 422)
)
async def create_ticket(body: TicketIn, scope: Creator) -> TicketOut:
    ticket = (await scope.run(service.create_ticket, scope.caller, body)).out()
    await scope.audit(
        "ticket.create",
        "ticket",
        ticket.id,
        changes=body.model_dump(mode="json", exclude_none=True),
        personal_data=True,
    )
    return ticket


@router.get("", responses=error_responses(401, 403, 422))
async def list_tickets(
    scope: Reader,
    filters: Annotated[TicketFilters, Query()],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TicketPage:
    tickets = await service.list_tickets(
        scope.connection, scope.caller, filters, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return await _audited_page(scope, tickets, limit)


@router.get("/mine", responses=error_responses(401, 403, 422))
async def list_my_tickets(scope: Reader, limit: Limit = 50, cursor: Cursor = None) -> TicketPage:
    tickets = await service.list_mine(
        scope.connection, scope.caller, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return await _audited_page(scope, tickets, limit)


def _queue_cursor(position: QueuePosition) -> str:
    rank, due, ticket_id = position
    return encode_key_cursor(f"{rank}|{due.isoformat()}|{ticket_id}")


def _queue_position(cursor: str | None) -> QueuePosition | None:
    """A queue cursor back into its position; anything this API did not issue is a 422."""
    value = decode_key_cursor(cursor)
    if value is None:
        return None
    rank, _, rest = value.partition("|")
    due, _, ticket_id = rest.partition("|")
    try:
        at = datetime.fromisoformat(due)
    except ValueError:
        at = None
    if rank not in ("0", "1") or at is None or at.tzinfo is None:
        raise invalid_cursor()
    return int(rank), at, row_id_of(ticket_id)


@router.get("/queue", responses=error_responses(401, 403, 422))
async def work_queue(scope: Updater, limit: Limit = 50, cursor: Cursor = None) -> TicketPage:
    """The caller's workable tickets (open or in progress, theirs or unassigned): urgent
    first, then the soonest first-response due time, then id."""
    rows = await scope.run(
        service.work_queue, scope.caller, after=_queue_position(cursor), limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = _queue_cursor(page[-1][1]) if len(rows) > limit else None
    now = datetime.now(UTC)
    items = [view.out(now) for view, _ in page]
    await scope.audit("ticket.list", "ticket", changes={"count": len(items)}, personal_data=True)
    return TicketPage(items=items, next_cursor=next_cursor)


_EXPORT_MEDIA_TYPES = {ExportFormat.CSV: "text/csv", ExportFormat.NDJSON: "application/x-ndjson"}
_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed: a CSV header row and one row per ticket, or one "
        "ticket per NDJSON line.",
        "content": {"text/csv": {}, "application/x-ndjson": {}},
    },
    **error_responses(401, 403, 422),
}


# Declared before /{ticket_id}, which would otherwise take "export" for an id.
@router.get("/export", response_class=StreamingResponse, responses=_EXPORT_RESPONSES)
async def export_tickets(
    scope: Exporter,
    runtime: RuntimeDep,
    filters: Annotated[TicketFilters, Query()],
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.CSV,
) -> StreamingResponse:
    selection = filters.model_dump(mode="json", exclude_none=True)
    changes: dict[str, Any] = {"format": export_format.value}
    # The search text goes with the event's personal fields (erasable, outside the chained
    # part): what someone searched for can be a person's name or address.
    if "q" in selection:
        changes["search"] = selection.pop("q")
    changes["filters"] = selection
    await scope.audit("ticket.export", "ticket", changes=changes, personal_data=True)
    tenant = scope.caller.workspace
    body = _export_file(runtime.sessions, scope.caller, filters, export_format)
    name = f"tickets-{tenant.slug}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{export_format.value}"
    return ClosingStream(
        body,
        media_type=_EXPORT_MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _export_file(
    sessions: sessionmaker[Session],
    caller: Caller,
    filters: TicketFilters,
    export_format: ExportFormat,
) -> Generator[bytes, None, None]:
    # The request's transaction has committed its audit event by the time the body is sent;
    # the rows are read in one read-only snapshot of their own, a batch at a time.
    with tenant_snapshot(sessions, caller.workspace) as session:
        tickets = export.visible_tickets(session, caller, filters, batch_size=export.BATCH_SIZE)
        yield from export.export_chunks(tickets, export_format, chunk_bytes=export.CHUNK_BYTES)


@router.post("/bulk", responses=error_responses(400, 401, 403, 404, 409, 413, 422))
async def bulk_change(body: BulkIn, scope: BulkChanger) -> BulkOut:
    outcome = await scope.run(bulk.apply_bulk_change, scope.caller, body)
    await scope.audit("ticket.bulk_update", "ticket", changes=outcome.audit_changes())
    return outcome.out()


@router.get("/{ticket_id}", responses=error_responses(401, 403, 404, 422))
async def get_ticket(ticket_id: RowId, scope: Reader) -> TicketOut:
    ticket = (await scope.run(service.get_ticket, scope.caller, ticket_id)).out()
    await scope.audit("ticket.read", "ticket", ticket.id, personal_data=True)
    return ticket


@router.patch("/{ticket_id}", responses=error_responses(400, 401, 403, 404, 409, 413, 422))
async def update_ticket(ticket_id: RowId, body: TicketPatch, scope: Updater) -> TicketOut:
    view, diff = await scope.run(service.update_ticket, scope.caller, ticket_id, body)
    await scope.audit("ticket.update", "ticket", ticket_id, changes=diff, personal_data=True)
    return view.out()


@router.delete(
    "/{ticket_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_ticket(ticket_id: RowId, scope: Deleter) -> Response:
    await scope.run(service.delete_ticket, scope.caller, ticket_id)
    await scope.audit("ticket.delete", "ticket", ticket_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
