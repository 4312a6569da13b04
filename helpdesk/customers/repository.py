"""Customer queries, under the request's tenant scope."""

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.customers.models import Customer


def by_email(session: Session, email: str) -> Customer | None:
    return session.scalars(
        select(Customer).where(func.lower(Customer.email) == email.lower())
    ).one_or_none()


def by_ids(session: Session, ids: set[int]) -> dict[int, Customer]:
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}


def page(session: Session, *, after_id: int | None, limit: int) -> Sequence[Customer]:
    query = select(Customer).order_by(Customer.id).limit(limit)
    if after_id is not None:
        query = query.where(Customer.id > after_id)
    return session.scalars(query).all()
