"""Ticket rules: validation beyond types and the status workflow."""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from helpdesk.core.errors import Conflict, NotFound
from helpdesk.tickets import repository
from helpdesk.tickets.models import Ticket
from helpdesk.tickets.schemas import TicketIn, TicketPatch, TicketStatus

S = TicketStatus
# A closed ticket is finished: it can only be reopened, never edited in place.
ALLOWED_MOVES: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.PENDING: frozenset({S.OPEN, S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}


def _found(session: Session, ticket_id: int) -> Ticket:
    ticket = repository.get_ticket(session, ticket_id)
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id} in this workspace.", code="ticket_not_found")
    return ticket


def create_ticket(session: Session, data: TicketIn) -> Ticket:
    ticket = Ticket(title=data.title, description=data.description, priority=data.priority.value)
    session.add(ticket)
    session.flush()
    session.refresh(ticket)
    return ticket


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    return _found(session, ticket_id)


def list_tickets(session: Session, *, after_id: int | None, limit: int) -> Sequence[Ticket]:
    return repository.list_tickets(session, after_id=after_id, limit=limit)


def update_ticket(session: Session, ticket_id: int, patch: TicketPatch) -> Ticket:
    ticket = _found(session, ticket_id)
    current = TicketStatus(ticket.status)
    changes = patch.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    if current == S.CLOSED and set(changes) - {"status"}:
        raise Conflict("A closed ticket cannot be edited; reopen it first.", code="ticket_closed")
    moving = patch.status is not None and patch.status != current
    if moving and patch.status not in ALLOWED_MOVES[current]:
        raise Conflict(
            f"A ticket cannot move from {current.value!r} to {patch.status.value!r}.",
            code="illegal_status_change",
        )
    for field, value in changes.items():
        setattr(ticket, field, value)
    ticket.updated_at = datetime.now(UTC)
    session.flush()
    return ticket


def delete_ticket(session: Session, ticket_id: int) -> None:
    session.delete(_found(session, ticket_id))
    session.flush()
