"""Ticket queries. They run under the request's tenant scope, so they name no schema.

Visibility is part of every query: a ticket outside the caller's scope is filtered out in SQL,
so it answers 404 exactly like a missing one and no list can leak it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Select, delete, func, select, text
from sqlalchemy.orm import Session

from auth.permissions import TicketScope
from helpdesk.customers.models import Customer
from helpdesk.tickets.models import Ticket, TicketTag
from helpdesk.tickets.schemas import TicketFilters


@dataclass(frozen=True, slots=True)
class Visibility:
    scope: TicketScope
    user_id: uuid.UUID
    email: str


def visible(query: Select[Ticket], who: Visibility) -> Select[Ticket]:
    if who.scope == TicketScope.OWN:
        own = select(Customer.id).where(func.lower(Customer.email) == who.email.lower())
        return query.where(Ticket.customer_id.in_(own.scalar_subquery()))
    if who.scope == TicketScope.ASSIGNED:
        return query.where(Ticket.assignee_id == who.user_id)
    return query


def get_visible(
    session: Session, ticket_id: int, who: Visibility, *, lock: bool = False
) -> Ticket | None:
    query = visible(select(Ticket).where(Ticket.id == ticket_id), who)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def list_visible(
    session: Session, who: Visibility, filters: TicketFilters, *, after_id: int | None, limit: int
) -> Sequence[Ticket]:
    query = visible(select(Ticket), who).order_by(Ticket.id).limit(limit)
    if after_id is not None:
        query = query.where(Ticket.id > after_id)
    if filters.status:
        query = query.where(Ticket.status == filters.status.value)
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority.value)
    if filters.assignee_id:
        query = query.where(Ticket.assignee_id == filters.assignee_id)
    if filters.customer_id:
        query = query.where(Ticket.customer_id == filters.customer_id)
    if filters.tag:
        tagged = select(TicketTag.ticket_id).where(TicketTag.tag == filters.tag.strip().lower())
        query = query.where(Ticket.id.in_(tagged.scalar_subquery()))
    if filters.q:
        query = query.where(Ticket.search.op("@@")(func.websearch_to_tsquery("english", filters.q)))
    if filters.created_after:
        query = query.where(Ticket.created_at >= filters.created_after)
    if filters.created_before:
        query = query.where(Ticket.created_at < filters.created_before)
    return session.scalars(query).all()


def tags_for(session: Session, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {tid: [] for tid in ticket_ids}
    if ticket_ids:
        rows = session.execute(
            select(TicketTag.ticket_id, TicketTag.tag)
            .where(TicketTag.ticket_id.in_(ticket_ids))
            .order_by(TicketTag.ticket_id, TicketTag.tag)
        )
        for ticket_id, tag in rows:
            tags[ticket_id].append(tag)
    return tags


def replace_tags(session: Session, ticket_id: int, tags: list[str]) -> None:
    session.execute(delete(TicketTag).where(TicketTag.ticket_id == ticket_id))
    session.add_all(TicketTag(ticket_id=ticket_id, tag=tag) for tag in tags)
    session.flush()


# --- GDPR and retention: statements on this domain's tables (tickets, their tags and comments) --

_REQUESTED_BY = text("SELECT id FROM tickets WHERE customer_id = :customer_id ORDER BY id")
_TICKET_DOCS = text(
    "SELECT t.id, t.title, t.description, t.status, t.priority, t.category, t.assignee_id,"
    " t.sla_due_at, t.first_response_at, t.sla_breached, t.escalated, t.status_changed_at,"
    " t.created_at, t.updated_at,"
    " coalesce((SELECT array_agg(g.tag ORDER BY g.tag) FROM ticket_tags g"
    "  WHERE g.ticket_id = t.id), '{}') AS tags"
    " FROM tickets t WHERE t.customer_id = :customer_id ORDER BY t.id"
)
# Status, priority, category, tags and every timestamp stay: the statistics survive.
_REDACT_REQUESTED = text(
    "UPDATE tickets SET title = :redacted, description = :redacted"
    " WHERE customer_id = :customer_id AND (title <> :redacted OR description <> :redacted)"
    " RETURNING id"
)
# Mentions anywhere else. ``left`` keeps a title within its column when "[erased]" is longer
# than the mention it replaces.
_UNMENTION = text(
    "UPDATE tickets SET title = left(regexp_replace(title, :pattern, :erased, 'gi'), 200),"
    " description = regexp_replace(description, :pattern, :erased, 'gi')"
    " WHERE title ~* :pattern OR description ~* :pattern RETURNING id"
)
# Closed tickets in id order through ix_tickets_status_id, resuming after the last batch, so a
# run reads each closed ticket once. A ticket some request holds (being reopened, say) is left
# for the next run rather than waited for; the lock re-checks the row, so one reopened since
# the scan began is not deleted. "Before the cutoff" is strict: one closed exactly at it stays.
_CLOSED_BEFORE = text(
    "SELECT id FROM tickets"
    " WHERE status = 'closed' AND status_changed_at < :cutoff AND id > :after"
    " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_DELETE_COMMENTS = text("DELETE FROM comments WHERE ticket_id = ANY(:ids)")
# ticket_tags go with their tickets (ON DELETE CASCADE).
_DELETE_TICKETS = text("DELETE FROM tickets WHERE id = ANY(:ids)")
_COUNT_CLOSED_BEFORE = text(
    "SELECT count(*) AS tickets,"
    " (SELECT count(*) FROM comments c WHERE c.ticket_id IN"
    "  (SELECT id FROM tickets WHERE status = 'closed' AND status_changed_at < :cutoff))"
    " AS comments"
    " FROM tickets WHERE status = 'closed' AND status_changed_at < :cutoff"
)


def requested_by(session: Session, customer_id: int) -> list[int]:
    return list(session.scalars(_REQUESTED_BY, {"customer_id": customer_id}))


def requested_documents(session: Session, customer_id: int) -> list[dict[str, Any]]:
    rows = session.execute(_TICKET_DOCS, {"customer_id": customer_id}).mappings()
    return [dict(row) for row in rows]


def redact_requested(session: Session, customer_id: int, *, redacted: str) -> set[int]:
    params = {"customer_id": customer_id, "redacted": redacted}
    return set(session.scalars(_REDACT_REQUESTED, params))


def unmention(session: Session, *, pattern: str, erased: str) -> set[int]:
    return set(session.scalars(_UNMENTION, {"pattern": pattern, "erased": erased}))


def closed_before(session: Session, cutoff: datetime, *, after: int, limit: int) -> list[int]:
    params = {"cutoff": cutoff, "after": after, "limit": limit}
    return list(session.scalars(_CLOSED_BEFORE, params))


def delete_with_comments(session: Session, ids: list[int]) -> tuple[int, int]:
    """Delete these tickets, their comments and tags; (tickets, comments) deleted."""
    comments = _rowcount(session.execute(_DELETE_COMMENTS, {"ids": ids}))
    return _rowcount(session.execute(_DELETE_TICKETS, {"ids": ids})), comments


def count_closed_before(session: Session, cutoff: datetime) -> tuple[int, int]:
    row = session.execute(_COUNT_CLOSED_BEFORE, {"cutoff": cutoff}).one()
    return int(row.tickets), int(row.comments)


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
