"""Customer queries, under the request's tenant scope."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
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


def tombstone(session: Session, customer_id: int, *, email: str, now: datetime) -> None:
    """A customer record that no longer says who it was: no name, company or phone."""
    session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(email=email, name="", company=None, phone=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
