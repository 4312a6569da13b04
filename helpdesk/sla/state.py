"""A ticket's live SLA state, read at the moment it is asked for rather than left to a job.

Each rule is written twice, once over a loaded ticket and once as SQL for the list filters and
the queue, side by side so they stay one rule; a test checks that both give the same answer.

- ``sla_breached``: the first-response target passed without a first response while the ticket
  was still being worked (``open``, ``in_progress``, ``pending``), or a late first response, or
  a resolution without one past the target, made it final (the stored flag).
- ``resolution_breached``: the resolution target passed while the ticket was unresolved, the
  clock standing still while it is ``pending`` on the customer; resolving late makes it final.
- ``urgent``: open or in progress, unassigned, high or critical.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_

from helpdesk.sla.models import WorkspaceSettings
from helpdesk.sla.service import resume_due
from helpdesk.tickets.models import Ticket
from helpdesk.tickets.schemas import TicketPriority, TicketStatus

S = TicketStatus
FIRST_RESPONSE_RUNS = (S.OPEN.value, S.IN_PROGRESS.value, S.PENDING.value)
FINISHED = (S.RESOLVED.value, S.CLOSED.value)
URGENT_STATUSES = (S.OPEN.value, S.IN_PROGRESS.value)
URGENT_PRIORITIES = (TicketPriority.HIGH.value, TicketPriority.CRITICAL.value)


def sla_breached(ticket: Ticket, now: datetime) -> bool:
    return ticket.sla_breached or (
        ticket.first_response_at is None
        and ticket.status in FIRST_RESPONSE_RUNS
        and ticket.sla_due_at is not None
        and now > ticket.sla_due_at
    )


def sla_breached_sql(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    return or_(
        Ticket.sla_breached,
        and_(
            Ticket.first_response_at.is_(None),
            Ticket.status.in_(FIRST_RESPONSE_RUNS),
            Ticket.sla_due_at < now,
        ),
    )


def resolution_breached(ticket: Ticket, now: datetime) -> bool:
    if ticket.resolution_breached:
        return True
    if ticket.resolution_due_at is None or ticket.status in FINISHED:
        return False
    clock = ticket.resolution_paused_at or now
    return clock > ticket.resolution_due_at


def resolution_breached_sql(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    return or_(
        Ticket.resolution_breached,
        and_(
            Ticket.status.not_in(FINISHED),
            func.coalesce(Ticket.resolution_paused_at, now) > Ticket.resolution_due_at,
        ),
    )


def urgent(ticket: Ticket) -> bool:
    return (
        ticket.status in URGENT_STATUSES
        and ticket.assignee_id is None
        and ticket.priority in URGENT_PRIORITIES
    )


def urgent_sql() -> ColumnElement[bool]:
    return and_(
        Ticket.status.in_(URGENT_STATUSES),
        Ticket.assignee_id.is_(None),
        Ticket.priority.in_(URGENT_PRIORITIES),
    )


def on_status_change(
    ticket: Ticket, before: str, after: str, now: datetime, settings: WorkspaceSettings
) -> None:
    """Keep the clocks when a ticket's status changes: the resolution clock stops while the
    ticket is pending and runs on, with what it had left, when it leaves pending; resolving or
    closing a ticket past a target makes that breach final."""
    if before == S.PENDING and ticket.resolution_paused_at is not None:
        if ticket.resolution_due_at is not None:
            ticket.resolution_due_at = resume_due(
                ticket.resolution_due_at, ticket.resolution_paused_at, now, settings
            )
        ticket.resolution_paused_at = None
    if after == S.PENDING:
        ticket.resolution_paused_at = now
    if after in FINISHED and before not in FINISHED:
        if ticket.resolution_due_at is not None and now > ticket.resolution_due_at:
            ticket.resolution_breached = True
        if (
            ticket.first_response_at is None
            and ticket.sla_due_at is not None
            and now > ticket.sla_due_at
        ):
            ticket.sla_breached = True
