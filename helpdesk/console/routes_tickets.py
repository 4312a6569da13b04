"""Agents' pages: the work queue, search and filters, a ticket with its thread, reply, assign,
status and priority; a customer with their tickets. Each page calls the API's services and
records the audit event the matching API call records."""

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from auth.permissions import Permission, TicketScope
from helpdesk.comments import service as comments
from helpdesk.comments.schemas import CommentIn
from helpdesk.console.web import PREFIX, allow, page, parse, redirect
from helpdesk.customers import service as customers
from helpdesk.pipeline import AppRoute, RowId, Scope
from helpdesk.tickets import routes as ticket_routes
from helpdesk.tickets import service as tickets
from helpdesk.tickets.schemas import TicketFilters, TicketPatch, TicketPriority, TicketStatus

router = APIRouter(route_class=AppRoute)

Reader = Annotated[Scope, Depends(allow(Permission.TICKETS_READ))]
Updater = Annotated[Scope, Depends(allow(Permission.TICKETS_UPDATE))]
Commenter = Annotated[Scope, Depends(allow(Permission.COMMENTS_CREATE))]
CustomerReader = Annotated[Scope, Depends(allow(Permission.CUSTOMERS_READ))]
PAGE_SIZE = 50
# An empty select or search box arrives as "", which means "any".
Optional = Annotated[str | None, Query(max_length=200)]


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


@router.get("/tickets")
async def ticket_list(
    request: Request,
    *,
    scope: Reader,
    q: Optional = None,
    status: Optional = None,
    priority: Optional = None,
    breached: Optional = None,
    cursor: Optional = None,
) -> Response:
    """With no filter, the caller's work queue (urgent first, soonest due); with one, the
    workspace's tickets that match, newest first as GET /tickets lists them."""
    filters = {
        "q": _blank_to_none(q),
        "status": _blank_to_none(status),
        "priority": _blank_to_none(priority),
        "sla_breached": True if breached == "yes" else None,
    }
    chosen = {key: value for key, value in filters.items() if value is not None}
    caller = scope.caller
    if caller.ticket_scope == TicketScope.OWN:
        return redirect(f"{PREFIX}/portal")  # customers have the portal, not the staff pages
    queue = not chosen and Permission.TICKETS_UPDATE in caller.permissions
    # The API's own list routes: their cursors, their audit event (ticket.list).
    if queue:
        listed = await ticket_routes.work_queue(scope, limit=PAGE_SIZE, cursor=cursor)
    else:
        listed = await ticket_routes.list_tickets(
            scope, parse(TicketFilters, **chosen), limit=PAGE_SIZE, cursor=cursor
        )
    shown = {"q": q or "", "status": status or "", "priority": priority or ""}
    more = {**{k: v for k, v in shown.items() if v}, **({"breached": "yes"} if breached else {})}
    return page(
        request,
        "tickets.html",
        scope,
        title="Work queue" if queue else "Tickets",
        tickets=listed.items,
        queue=queue,
        filters=shown,
        next_page=(
            f"{PREFIX}/tickets?{urlencode({**more, 'cursor': listed.next_cursor})}"
            if listed.next_cursor
            else None
        ),
        breached=breached == "yes",
        statuses=list(TicketStatus),
        priorities=list(TicketPriority),
    )


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: RowId, scope: Reader) -> Response:
    caller = scope.caller
    if caller.ticket_scope == TicketScope.OWN:
        return redirect(f"{PREFIX}/portal/tickets/{ticket_id}")
    ticket = (await scope.run(tickets.get_ticket, caller, ticket_id)).out()
    # The repository shows a customer public replies only; the rest see notes marked.
    thread = await scope.run(comments.list_comments, caller, ticket_id, after_id=None, limit=500)
    await scope.audit("ticket.read", "ticket", ticket.id, personal_data=True)
    return page(
        request,
        "ticket.html",
        scope,
        title=f"#{ticket.id} {ticket.title}",
        ticket=ticket,
        thread=thread,
        statuses=list(TicketStatus),
        priorities=list(TicketPriority),
    )


@router.post("/tickets/{ticket_id}/comments")
async def reply(
    ticket_id: RowId,
    scope: Commenter,
    body: Annotated[str, Form(max_length=50_000)],
    visibility: Annotated[str, Form(pattern="^(public|internal)$")] = "public",
) -> Response:
    data = parse(CommentIn, body=body, public=visibility == "public")
    comment = await scope.run(comments.add_comment, scope.caller, ticket_id, data)
    await scope.audit(
        "comment.create",
        "comment",
        comment.id,
        changes={"ticket_id": ticket_id, "public": data.public, "body": data.body},
        personal_data=True,
    )
    return redirect(f"{PREFIX}/tickets/{ticket_id}#comment-{comment.id}")


@router.post("/tickets/{ticket_id}")
async def update(
    ticket_id: RowId,
    scope: Updater,
    status: Annotated[str | None, Form(max_length=20)] = None,
    priority: Annotated[str | None, Form(max_length=20)] = None,
    assignee: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """One form per change (status, priority, assignee): only the fields sent are changed."""
    fields: dict[str, object] = {}
    if status:
        fields["status"] = status
    if priority:
        fields["priority"] = priority
    if assignee is not None:
        fields["assignee_id"] = _assignee(scope, assignee)
    patch = parse(TicketPatch, **fields)
    _, diff = await scope.run(tickets.update_ticket, scope.caller, ticket_id, patch)
    await scope.audit("ticket.update", "ticket", ticket_id, changes=diff, personal_data=True)
    return redirect(f"{PREFIX}/tickets/{ticket_id}")


def _assignee(scope: Scope, choice: str) -> uuid.UUID | str | None:
    """ "me", "nobody", or a member's id typed in; the service checks who may be assigned."""
    if choice == "me":
        return scope.caller.user_id
    if choice in ("", "nobody"):
        return None
    return choice.strip()


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: RowId, scope: CustomerReader) -> Response:
    customer = await scope.run(customers.get_customer, customer_id)
    theirs: list[object] = []
    if Permission.TICKETS_READ in scope.caller.permissions:
        views = await tickets.list_tickets(
            scope.connection,
            scope.caller,
            TicketFilters(customer_id=customer_id),
            after_id=None,
            limit=PAGE_SIZE,
        )
        theirs = list(views)
    await scope.audit("customer.read", "customer", customer.id, personal_data=True)
    return page(
        request,
        "customer.html",
        scope,
        title=customer.name or customer.email,
        customer=customer,
        tickets=theirs,
    )
