"""Ticket queries. They run under the request's tenant scope, so they name no schema.

Visibility is part of every query: a ticket outside the caller's scope is filtered out in SQL,
so it answers 404 exactly like a missing one and no list can leak it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVarTuple, cast

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    DateTime,
    Result,
    Select,
    bindparam,
    case,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from auth.permissions import TicketScope
from helpdesk.core.db import driver_statement
from helpdesk.customers.models import Customer
from helpdesk.sla import state as sla_state
from helpdesk.tickets.models import Ticket, TicketTag
from helpdesk.tickets.schemas import TicketFilters


@dataclass(frozen=True, slots=True)
class Visibility:
    scope: TicketScope
    user_id: uuid.UUID
    email: str


# Any query over tickets, whatever it selects.
Columns = TypeVarTuple("Columns")


def visible(query: Select[*Columns], who: Visibility) -> Select[*Columns]:
    # Bound by name (visibility_values): a page's statement is compiled once per shape.
    if who.scope == TicketScope.OWN:
        # Never correlated: a page's query joins customers itself.
        own = (
            select(Customer.id)
            .where(func.lower(Customer.email) == bindparam("visible_email", who.email.lower()))
            .correlate(None)
        )
        return query.where(Ticket.customer_id.in_(own.scalar_subquery()))
    if who.scope == TicketScope.ASSIGNED:
        return query.where(Ticket.assignee_id == bindparam("visible_assignee", who.user_id))
    return query


def visibility_values(who: Visibility) -> dict[str, Any]:
    """What ``visible`` binds for ``who``, by name."""
    if who.scope == TicketScope.OWN:
        return {"visible_email": who.email.lower()}
    if who.scope == TicketScope.ASSIGNED:
        return {"visible_assignee": who.user_id}
    return {}


def get_visible(
    session: Session, ticket_id: int, who: Visibility, *, lock: bool = False
) -> Ticket | None:
    query = visible(select(Ticket).where(Ticket.id == ticket_id), who)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def lock_visible(session: Session, ticket_ids: Sequence[int], who: Visibility) -> Sequence[Ticket]:
    """The tickets among ``ticket_ids`` the caller can see, locked for update in id order (two
    bulk changes over overlapping tickets then wait for each other instead of deadlocking)."""
    query = visible(select(Ticket).where(Ticket.id.in_(ticket_ids)), who)
    return session.scalars(query.order_by(Ticket.id).with_for_update()).all()


def list_visible(
    session: Session,
    who: Visibility,
    filters: TicketFilters,
    *,
    after_id: int | None,
    limit: int,
    now: datetime,
) -> Sequence[Ticket]:
    """The list's tickets as entities, in id order (the export shapes them as the API does)."""
    query = visible(select(Ticket).order_by(Ticket.id), who)
    return session.scalars(filtered(query, filters, after_id=after_id, now=now).limit(limit)).all()


def _holds(condition: ColumnElement[bool], wanted: bool) -> ColumnElement[bool]:
    # "is not true" rather than NOT: a condition that is unknown (no due time) does not hold.
    return condition.is_(True) if wanted else condition.is_not(True)


# The moment the SLA state is read at, bound by name.
NOW = bindparam("now", type_=DateTime(timezone=True))
# Each filter's condition, on the value filter_values binds under the same name.
_CONDITIONS: dict[str, ColumnElement[bool]] = {
    "after_id": Ticket.id > bindparam("after_id"),
    "status": Ticket.status == bindparam("status"),
    "priority": Ticket.priority == bindparam("priority"),
    "assignee_id": Ticket.assignee_id == bindparam("assignee_id"),
    "customer_id": Ticket.customer_id == bindparam("customer_id"),
    "tag": Ticket.id.in_(
        select(TicketTag.ticket_id).where(TicketTag.tag == bindparam("tag")).scalar_subquery()
    ),
    "q": Ticket.search.op("@@")(func.websearch_to_tsquery("english", bindparam("q"))),
    "created_after": Ticket.created_at >= bindparam("created_after"),
    "created_before": Ticket.created_at < bindparam("created_before"),
}


def filter_values(filters: TicketFilters, *, after_id: int | None) -> dict[str, Any]:
    """The filters that select something and the cursor, by the names they are bound under."""
    values = {
        "after_id": after_id,
        "status": filters.status.value if filters.status else None,
        "priority": filters.priority.value if filters.priority else None,
        "assignee_id": filters.assignee_id,
        "customer_id": filters.customer_id,
        "tag": filters.tag.strip().lower() if filters.tag else None,
        "q": filters.q or None,
        "created_after": filters.created_after,
        "created_before": filters.created_before,
    }
    return {name: value for name, value in values.items() if value is not None}


def _where(
    query: Select[*Columns], filters: TicketFilters, *, after_id: int | None
) -> Select[*Columns]:
    """The filters' conditions, their values left to the caller to bind."""
    query = query.where(*(_CONDITIONS[name] for name in filter_values(filters, after_id=after_id)))
    if filters.sla_breached is not None:
        query = query.where(_holds(sla_state.sla_breached_sql(NOW), filters.sla_breached))
    if filters.unassigned is not None:
        query = query.where(_holds(Ticket.assignee_id.is_(None), filters.unassigned))
    if filters.urgent is not None:
        query = query.where(_holds(sla_state.urgent_sql(), filters.urgent))
    return query


def filtered(
    query: Select[*Columns], filters: TicketFilters, *, after_id: int | None, now: datetime
) -> Select[*Columns]:
    """The list's filters and its cursor, on any query over ``tickets``; ``now`` is the moment
    the SLA filters read the clock at."""
    values = {**filter_values(filters, after_id=after_id), "now": now}
    return _where(query, filters, after_id=after_id).params(values)


# A page is read in one statement, as plain rows: the columns a ticket shows (TicketOut, not
# the search vector or the workflow's bookkeeping), its customer's reference and its tags, so a
# page of 50 is one round trip and no ORM entity is built for a read (bench/README.md).
_TAGS = (
    select(func.array_agg(aggregate_order_by(TicketTag.tag, TicketTag.tag)))
    .where(TicketTag.ticket_id == Ticket.id)
    .scalar_subquery()
)


_PAGE = (
    select(
        Ticket.id,
        Ticket.title,
        Ticket.description,
        Ticket.status,
        Ticket.priority,
        Ticket.category,
        Ticket.customer_id,
        Customer.email.label("customer_email"),
        Customer.name.label("customer_name"),
        Ticket.assignee_id,
        Ticket.sla_due_at,
        # The live state, read at ``now`` (helpdesk.sla.state), never unknown.
        func.coalesce(sla_state.sla_breached_sql(NOW), false()).label("sla_breached"),
        Ticket.resolution_due_at,
        func.coalesce(sla_state.resolution_breached_sql(NOW), false()).label("resolution_breached"),
        Ticket.escalated,
        Ticket.created_at,
        Ticket.updated_at,
        _TAGS.label("tags"),
    )
    .select_from(Ticket)
    .outerjoin(Customer, Customer.id == Ticket.customer_id)
    .order_by(Ticket.id)
    .limit(bindparam("limit"))
)
# A page's statement per shape (visibility scope, filters present, SLA conditions asked), as
# psycopg's SQL with its constants' values: compiled once, then each request binds its values.
_PAGE_SQL: dict[tuple[object, ...], tuple[str, dict[str, Any]]] = {}


async def list_page(
    connection: psycopg.AsyncConnection[Any],
    who: Visibility,
    filters: TicketFilters,
    *,
    after_id: int | None,
    limit: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Visible tickets in id order, as dicts of ``_PAGE``'s columns (``tags`` is None for a
    ticket without any), read on the request's psycopg connection: the statement is built and
    compiled once per shape, where the ORM would build, key and compile it per request. The
    session's pending changes are not flushed for it."""
    values = {
        **visibility_values(who),
        **filter_values(filters, after_id=after_id),
        "now": now,
        "limit": limit,
    }
    shape = (who.scope, *sorted(values), filters.sla_breached, filters.unassigned, filters.urgent)
    compiled = _PAGE_SQL.get(shape)
    if compiled is None:
        compiled = _PAGE_SQL[shape] = _compile_page(who, filters, values)
    sql, constants = compiled
    cursor = connection.cursor(row_factory=dict_row, binary=True)
    await cursor.execute(sql, {**constants, **values})
    return await cursor.fetchall()


def _compile_page(
    who: Visibility, filters: TicketFilters, values: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    statement = _where(visible(_PAGE, who), filters, after_id=values.get("after_id"))
    sql, bound = driver_statement(statement.params(values))
    if set(values) - set(bound):
        raise RuntimeError(f"the page binds no {sorted(set(values) - set(bound))}")
    # What the statement holds besides the request's values: the SLA rules' status lists.
    return sql, {name: value for name, value in bound.items() if name not in values}


# The queue's order: urgent first, then the soonest first-response due time, then id. A ticket
# without a due time sorts last among its peers.
_QUEUE_RANK = case((sla_state.urgent_sql(), 0), else_=1)
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)
_QUEUE_DUE = func.coalesce(Ticket.sla_due_at, literal(_NEVER, DateTime(timezone=True)))


def queue(
    session: Session,
    who: Visibility,
    *,
    after: tuple[int, datetime, int] | None,
    limit: int,
) -> list[tuple[Ticket, tuple[int, datetime, int]]]:
    """The tickets ``who`` may work now (open or in progress, theirs or nobody's), in queue
    order, each with its position (for the next page's cursor)."""
    query = (
        visible(select(Ticket, _QUEUE_RANK, _QUEUE_DUE), who)
        .where(
            Ticket.status.in_(sla_state.URGENT_STATUSES),
            or_(Ticket.assignee_id.is_(None), Ticket.assignee_id == who.user_id),
        )
        .order_by(_QUEUE_RANK, _QUEUE_DUE, Ticket.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(_QUEUE_RANK, _QUEUE_DUE, Ticket.id) > tuple_(*after))
    return [(row[0], (row[1], row[2], row[0].id)) for row in session.execute(query)]


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
    add_tags(session, ticket_id, tags)


def add_tags(session: Session, ticket_id: int, tags: list[str]) -> None:
    if tags:
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
