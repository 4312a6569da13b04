"""HTTP for /tickets."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from auth.permissions import Permission
from helpdesk.pipeline import Scope, require
from helpdesk.tickets import service
from helpdesk.tickets.schemas import TicketIn, TicketOut, TicketPage, TicketPatch

router = APIRouter(prefix="/tickets", tags=["tickets"])

Reader = Annotated[Scope, Depends(require(Permission.TICKETS_READ))]
Creator = Annotated[Scope, Depends(require(Permission.TICKETS_CREATE))]
Updater = Annotated[Scope, Depends(require(Permission.TICKETS_UPDATE))]
Deleter = Annotated[Scope, Depends(require(Permission.TICKETS_DELETE))]
_ERRORS: dict[int | str, dict[str, str]] = {401: {}, 403: {}}


@router.post("", status_code=status.HTTP_201_CREATED, responses={**_ERRORS, 422: {}})
def create_ticket(body: TicketIn, scope: Creator) -> TicketOut:
    return TicketOut.model_validate(service.create_ticket(scope.session, body))


@router.get("", responses=_ERRORS)
def list_tickets(
    scope: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,19}$")] = None,
) -> TicketPage:
    rows = service.list_tickets(
        scope.session, after_id=int(cursor) if cursor else None, limit=limit + 1
    )
    items = [TicketOut.model_validate(t) for t in rows[:limit]]
    return TicketPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


@router.get("/{ticket_id}", responses={**_ERRORS, 404: {}})
def get_ticket(ticket_id: int, scope: Reader) -> TicketOut:
    return TicketOut.model_validate(service.get_ticket(scope.session, ticket_id))


@router.patch("/{ticket_id}", responses={**_ERRORS, 404: {}, 409: {}, 422: {}})
def update_ticket(ticket_id: int, body: TicketPatch, scope: Updater) -> TicketOut:
    return TicketOut.model_validate(service.update_ticket(scope.session, ticket_id, body))


@router.delete(
    "/{ticket_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**_ERRORS, 404: {}}
)
def delete_ticket(ticket_id: int, scope: Deleter) -> Response:
    service.delete_ticket(scope.session, ticket_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
