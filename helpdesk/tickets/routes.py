"""HTTP for /tickets."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from auth.permissions import Permission
from helpdesk.core.pagination import Limit, decode_cursor, id_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RowId, Scope, require
from helpdesk.tickets import service
from helpdesk.tickets.schemas import TicketFilters, TicketIn, TicketOut, TicketPage, TicketPatch
from helpdesk.tickets.service import TicketView

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=AppRoute)

Reader = Annotated[Scope, Depends(require(Permission.TICKETS_READ))]
Creator = Annotated[Scope, Depends(require(Permission.TICKETS_CREATE))]
Updater = Annotated[Scope, Depends(require(Permission.TICKETS_UPDATE))]
Deleter = Annotated[Scope, Depends(require(Permission.TICKETS_DELETE))]
Cursor = Annotated[str | None, Query(max_length=64)]


async def _audited_page(scope: Scope, views: list[TicketView], limit: int) -> TicketPage:
    items, next_cursor = id_page([v.out() for v in views], limit)
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
    views = await scope.run(
        service.list_tickets, scope.caller, filters, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return await _audited_page(scope, views, limit)


@router.get("/mine", responses=error_responses(401, 403, 422))
async def list_my_tickets(scope: Reader, limit: Limit = 50, cursor: Cursor = None) -> TicketPage:
    views = await scope.run(
        service.list_mine, scope.caller, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return await _audited_page(scope, views, limit)


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
