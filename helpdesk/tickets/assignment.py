"""Who may work tickets, and routing: which member automatic assignment picks for a new ticket.

Candidates are the members whose role holds ``tickets.receive`` and may work tickets
(``tickets.update``: a ticket handed to someone who cannot change it would sit). Among them a
ticket with a category goes first to those with that skill, a critical ticket first to senior
members, then to whoever has the fewest working tickets; ties go to the longest-standing member.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from auth.permissions import BUILTIN_ROLES, Permission
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.tickets.schemas import TicketPriority
from tenants.locks import LockKey, lock_workspace

WORKING_STATUSES = ("open", "in_progress", "pending")
_PRIORITIES = list(TicketPriority)  # declared from low to critical


def roles_that_work_tickets() -> list[str]:
    return [role for role, perms in BUILTIN_ROLES.items() if Permission.TICKETS_UPDATE in perms]


def roles_that_receive_tickets() -> list[str]:
    return [
        role
        for role, perms in BUILTIN_ROLES.items()
        if {Permission.TICKETS_RECEIVE, Permission.TICKETS_UPDATE} <= perms
    ]


# Members whose role may work tickets: a built-in one that does, or a custom one holding the
# permission.
_WORKERS = (
    " FROM public.members m"
    " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
    " WHERE m.tenant_id = :t"
    " AND (m.role = ANY(:roles) OR :permission = ANY(cr.permissions))"
)


def _workers_parameters(tenant_id: uuid.UUID) -> dict[str, object]:
    return {
        "t": tenant_id,
        "roles": roles_that_work_tickets(),
        "permission": Permission.TICKETS_UPDATE.value,
    }


def may_work_tickets(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    row = session.execute(
        text("SELECT 1" + _WORKERS + " AND m.user_id = :u"),
        {**_workers_parameters(tenant_id), "u": user_id},
    ).first()
    return row is not None


@dataclass(frozen=True, slots=True)
class Worker:
    """A member a ticket may be assigned to, as a person picks them: by name."""

    user_id: uuid.UUID
    name: str
    email: str


def ticket_workers(session: Session, tenant_id: uuid.UUID) -> list[Worker]:
    """Every member who may be assigned tickets (``may_work_tickets``), by name."""
    rows = session.execute(
        text("SELECT m.user_id, m.name, m.email" + _WORKERS + " ORDER BY lower(m.name), m.email"),
        _workers_parameters(tenant_id),
    )
    return [Worker(row.user_id, row.name, row.email) for row in rows]


def auto_assigns(settings: WorkspaceSettings, priority: str) -> bool:
    """Whether a new ticket of ``priority`` is assigned automatically under ``settings``."""
    if not settings.auto_assign:
        return False
    minimum = TicketPriority(settings.auto_assign_min_priority or TicketPriority.LOW)
    return _PRIORITIES.index(TicketPriority(priority)) >= _PRIORITIES.index(minimum)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A member automatic assignment may pick, with what routing weighs."""

    user_id: uuid.UUID
    skills: frozenset[str]
    senior: bool
    load: int  # working tickets assigned to them now
    joined: datetime


def choose_assignee(
    candidates: Iterable[Candidate], *, category: str | None, priority: str
) -> uuid.UUID | None:
    """The candidate a ticket goes to: skill for its category first, then seniority for a
    critical ticket, then the fewest working tickets, then the longest-standing member."""

    def order(c: Candidate) -> tuple[bool, bool, int, datetime, uuid.UUID]:
        # False sorts first: a candidate who matches comes before one who does not.
        return (
            not (category is not None and category in c.skills),
            not (priority == TicketPriority.CRITICAL and c.senior),
            c.load,
            c.joined,
            c.user_id,
        )

    best = min(candidates, key=order, default=None)
    return best.user_id if best is not None else None


_CANDIDATES = text(
    "SELECT m.user_id, m.skills, m.senior, coalesce(load.n, 0) AS load, m.created_at"
    " FROM public.members m"
    " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
    " LEFT JOIN (SELECT assignee_id, count(*) AS n FROM tickets"
    "            WHERE status = ANY(:working) GROUP BY assignee_id) load"
    "   ON load.assignee_id = m.user_id"
    " WHERE m.tenant_id = :t"
    " AND (m.role = ANY(:roles) OR cr.permissions @> CAST(:needed AS varchar[]))"
)


def candidates(session: Session, tenant_id: uuid.UUID) -> list[Candidate]:
    rows = session.execute(
        _CANDIDATES,
        {
            "t": tenant_id,
            "working": list(WORKING_STATUSES),
            "roles": roles_that_receive_tickets(),
            "needed": [Permission.TICKETS_RECEIVE.value, Permission.TICKETS_UPDATE.value],
        },
    )
    return [
        Candidate(row.user_id, frozenset(row.skills), row.senior, row.load, row.created_at)
        for row in rows
    ]


def route_ticket(
    session: Session, tenant_id: uuid.UUID, *, category: str | None, priority: str
) -> uuid.UUID | None:
    """The member a new ticket is assigned to automatically, or None when nobody may receive it.

    Serialised per workspace with a transaction-scoped advisory lock, so two tickets created at
    the same moment do not both pick the same member from the same counts.
    """
    lock_workspace(session, LockKey.ASSIGNMENT)
    return choose_assignee(candidates(session, tenant_id), category=category, priority=priority)
