"""The customer portal: a customer's own tickets with their public replies, a form to open a
ticket and one to reply; nothing else. What a customer may see and do is the services' rule
(their own tickets, public comments only); these pages only show it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission, TicketScope
from helpdesk.comments import service as comments
from helpdesk.comments.schemas import CommentIn
from helpdesk.console.web import PREFIX, allow, page, parse, redirect
from helpdesk.pipeline import AppRoute, RowId, Scope
from helpdesk.tickets import service as tickets
from helpdesk.tickets.schemas import TicketIn

router = APIRouter(prefix="/portal", route_class=AppRoute)

Reader = Annotated[Scope, Depends(allow(Permission.TICKETS_READ))]
Creator = Annotated[Scope, Depends(allow(Permission.TICKETS_CREATE))]
Commenter = Annotated[Scope, Depends(allow(Permission.COMMENTS_CREATE))]
PAGE_SIZE = 100


def is_customer(scope: Scope) -> bool:
    return scope.caller.ticket_scope == TicketScope.OWN


@router.get("")
async def my_tickets(request: Request, scope: Reader) -> Response:
    if not is_customer(scope):
        return redirect(f"{PREFIX}/tickets")
    views = await tickets.list_mine(scope.connection, scope.caller, after_id=None, limit=PAGE_SIZE)
    items = list(views)
    await scope.audit("ticket.list", "ticket", changes={"count": len(items)}, personal_data=True)
    return page(request, "portal.html", scope, title="My tickets", tickets=items)


@router.post("/tickets")
async def open_ticket(
    scope: Creator,
    title: Annotated[str, Form(max_length=200)],
    description: Annotated[str, Form(max_length=50_000)] = "",
) -> Response:
    # A customer's ticket is theirs: the service fills the requester in from the caller.
    body = parse(TicketIn, title=title, description=description)
    ticket = (await scope.run(tickets.create_ticket, scope.caller, body)).out()
    await scope.audit(
        "ticket.create",
        "ticket",
        ticket.id,
        changes=body.model_dump(mode="json", exclude_none=True),
        personal_data=True,
    )
    return redirect(f"{PREFIX}/portal/tickets/{ticket.id}")


@router.get("/tickets/{ticket_id}")
async def my_ticket(request: Request, ticket_id: RowId, scope: Reader) -> Response:
    if not is_customer(scope):
        return redirect(f"{PREFIX}/tickets/{ticket_id}")
    ticket = (await scope.run(tickets.get_ticket, scope.caller, ticket_id)).out()
    thread = await scope.run(
        comments.list_comments, scope.caller, ticket_id, after_id=None, limit=500
    )
    await scope.audit("ticket.read", "ticket", ticket.id, personal_data=True)
    return page(
        request,
        "portal_ticket.html",
        scope,
        title=f"#{ticket.id} {ticket.title}",
        ticket=ticket,
        thread=thread,
    )


@router.post("/tickets/{ticket_id}/comments")
async def reply(
    ticket_id: RowId, scope: Commenter, body: Annotated[str, Form(max_length=50_000)]
) -> Response:
    data = parse(CommentIn, body=body, public=True)
    comment = await scope.run(comments.add_comment, scope.caller, ticket_id, data)
    await scope.audit(
        "comment.create",
        "comment",
        comment.id,
        changes={"ticket_id": ticket_id, "public": True, "body": data.body},
        personal_data=True,
    )
    return redirect(f"{PREFIX}/portal/tickets/{ticket_id}")
