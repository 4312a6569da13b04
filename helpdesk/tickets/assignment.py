"""Who may work tickets, and automatic assignment to the least-loaded agent."""

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from auth.permissions import BUILTIN_ROLES, Permission
from tenants.locks import LockKey, lock_workspace

WORKING_STATUSES = ("open", "in_progress", "pending")


def roles_that_work_tickets() -> list[str]:
    return [role for role, perms in BUILTIN_ROLES.items() if Permission.TICKETS_UPDATE in perms]


def may_work_tickets(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    row = session.execute(
        text(
            "SELECT 1 FROM public.members m"
            " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
            " WHERE m.tenant_id = :t AND m.user_id = :u"
            " AND (m.role = ANY(:roles) OR :permission = ANY(cr.permissions))"
        ),
        {
            "t": tenant_id,
            "u": user_id,
            "roles": roles_that_work_tickets(),
            "permission": Permission.TICKETS_UPDATE.value,
        },
    ).first()
    return row is not None


def least_loaded_agent(session: Session, tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The active agent with the fewest working tickets (ties: longest-standing member).

    Serialised per workspace with a transaction-scoped advisory lock, so two tickets created at
    the same moment do not both pick the same agent from the same counts.
    """
    lock_workspace(session, LockKey.ASSIGNMENT)
    return session.execute(
        text(
            "SELECT m.user_id FROM public.members m"
            " LEFT JOIN (SELECT assignee_id, count(*) AS n FROM tickets"
            "            WHERE status = ANY(:working) GROUP BY assignee_id) load"
            "   ON load.assignee_id = m.user_id"
            " WHERE m.tenant_id = :t AND m.role = 'agent'"
            " ORDER BY coalesce(load.n, 0), m.created_at, m.user_id LIMIT 1"
        ),
        {"t": tenant_id, "working": list(WORKING_STATUSES)},
    ).scalar_one_or_none()
