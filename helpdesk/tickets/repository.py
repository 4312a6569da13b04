"""Ticket queries. They run under the request's tenant scope, so they name no schema.

Visibility is part of every query: a ticket outside the caller's scope is filtered out in SQL,
so it answers 404 exactly like a missing one and no list can leak it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, select
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
