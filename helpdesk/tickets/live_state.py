"""A ticket's SLA state as of now, computed rather than stored: breached from the moment its
first-response target passes without a first response, not from the next escalation run; and
which tickets are urgent. Each rule is written twice, for a ticket in hand (what a response
shows) and as a SQL clause (what a filter and the queue select), side by side so a reader can
check that they agree (tests/unit/test_live_state.py holds the rules as tables,
tests/e2e/test_live_sla.py the filters and queue over HTTP).
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, and_, case, func, literal, or_

from helpdesk.tickets.models import Ticket
from helpdesk.tickets.schemas import TicketPriority, TicketStatus

# The first-response clock runs while a ticket waits for work; a resolved or closed ticket keeps
# what was recorded when it got there (``record_breach_on_finish``).
CLOCK_RUNNING = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.PENDING)
# API.md: open or in progress, unassigned, high or critical; resolved and closed never.
URGENT_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)
URGENT_PRIORITIES = (TicketPriority.HIGH, TicketPriority.CRITICAL)
# The caller's queue: what can be worked now (pending waits on the customer).
WORKABLE_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


def first_response_overdue(ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.first_response_at is None
        and ticket.sla_due_at is not None
        and ticket.sla_due_at <= now
    )


def is_breached(ticket: Ticket, now: datetime) -> bool:
    return ticket.sla_breached or (
        ticket.status in CLOCK_RUNNING and first_response_overdue(ticket, now)
    )


def is_urgent(ticket: Ticket) -> bool:
    return (
        ticket.status in URGENT_STATUSES
        and ticket.assignee_id is None
        and ticket.priority in URGENT_PRIORITIES
    )


def breached_clause(now: datetime) -> ColumnElement[bool]:
    return or_(
        Ticket.sla_breached.is_(True),
        and_(
            Ticket.status.in_([s.value for s in CLOCK_RUNNING]),
            Ticket.first_response_at.is_(None),
            Ticket.sla_due_at.is_not(None),
            Ticket.sla_due_at <= now,
        ),
    )


def urgent_clause() -> ColumnElement[bool]:
    return and_(
        Ticket.status.in_([s.value for s in URGENT_STATUSES]),
        Ticket.assignee_id.is_(None),
        Ticket.priority.in_([p.value for p in URGENT_PRIORITIES]),
    )


# Stands in for a missing due time in the queue's key, after the "no due time" flag has
# already put such tickets last: any fixed value a cursor can carry would do.
NO_DUE = datetime(1970, 1, 1, tzinfo=UTC)


def queue_key() -> tuple[ColumnElement[Any], ...]:
    """The queue's order as one ascending key: urgent first (0), then tickets with a due time,
    the soonest first, then id. Every part is a plain value, so a cursor can hold the key of
    the last ticket of a page and the next page starts strictly after it."""
    rank: ColumnElement[Any] = case((urgent_clause(), 0), else_=1)
    no_due: ColumnElement[Any] = case((Ticket.sla_due_at.is_(None), 1), else_=0)
    due: ColumnElement[Any] = func.coalesce(
        Ticket.sla_due_at, literal(NO_DUE, DateTime(timezone=True))
    )
    return rank, no_due, due, Ticket.__table__.c.id


def queue_key_of(ticket: Ticket) -> tuple[int, int, datetime, int]:
    """``queue_key`` of a ticket in hand, for the next page's cursor."""
    due = ticket.sla_due_at
    return (0 if is_urgent(ticket) else 1, 1 if due is None else 0, due or NO_DUE, ticket.id)


def record_breach_on_finish(ticket: Ticket, now: datetime) -> None:
    """A ticket leaving the running clock (resolved, closed) without a first response keeps
    whether its target had passed by then: stored, since the live rule no longer counts it."""
    if first_response_overdue(ticket, now):
        ticket.sla_breached = True
