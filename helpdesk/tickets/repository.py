"""Ticket queries. They run under the request's tenant scope, so they name no schema."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.tickets.models import Ticket


def get_ticket(session: Session, ticket_id: int) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def list_tickets(session: Session, *, after_id: int | None, limit: int) -> Sequence[Ticket]:
    query = select(Ticket).order_by(Ticket.id).limit(limit)
    if after_id is not None:
        query = query.where(Ticket.id > after_id)
    return session.scalars(query).all()
