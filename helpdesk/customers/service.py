"""Customer rules: one record per email (case-insensitively) in a workspace."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.gdpr import Subject
from helpdesk.core.errors import Conflict, InvalidInput, NotFound
from helpdesk.customers import repository
from helpdesk.customers.models import Customer
from helpdesk.customers.phones import to_e164
from helpdesk.customers.schemas import CustomerIn, CustomerPatch
from helpdesk.sla.service import load_settings


def _duplicate(email: str) -> Conflict:
    return Conflict(f"A customer with the email {email} exists already.", code="duplicate_email")


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    return customer


def list_customers(session: Session, *, after_id: int | None, limit: int) -> Sequence[Customer]:
    return repository.page(session, after_id=after_id, limit=limit)


def phone_in_e164(session: Session, phone: str) -> str:
    """``phone`` as the workspace reads it: E.164, a national number taken as dialled in the
    workspace's phone region; an invalid one is a 422 on ``phone``."""
    try:
        return to_e164(phone, load_settings(session).phone_region)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_phone", field="phone") from exc


def create_customer(session: Session, data: CustomerIn) -> Customer:
    if repository.by_email(session, str(data.email)) is not None:
        raise _duplicate(str(data.email))
    fields = data.model_dump(mode="json")
    if data.phone is not None:
        fields["phone"] = phone_in_e164(session, data.phone)
    customer = Customer(**fields)
    session.add(customer)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent request took the email first
        raise _duplicate(str(data.email)) from exc
    session.refresh(customer)
    return customer


def update_customer(
    session: Session, customer_id: int, patch: CustomerPatch
) -> tuple[Customer, dict[str, Any]]:
    customer = get_customer(session, customer_id)
    changes = patch.model_dump(mode="json", exclude_unset=True)
    if changes.get("phone") is not None:
        changes["phone"] = phone_in_e164(session, changes["phone"])
    new_email = changes.get("email")
    if new_email and new_email.lower() != customer.email.lower():
        other = repository.by_email(session, new_email)
        if other is not None:
            raise _duplicate(new_email)
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None and field in ("email", "name", "tier"):
            continue  # required fields cannot be cleared
        if getattr(customer, field) != value:
            diff[field] = {"before": getattr(customer, field), "after": value}
            setattr(customer, field, value)
    if diff:
        customer.updated_at = datetime.now(UTC)
    session.flush()
    return customer, diff


def customer_for_email(session: Session, email: str, name: str | None) -> Customer:
    """The customer with this email, created on the fly when a ticket names a new one.

    Two tickets from a new requester can arrive at once: the insert yields to whichever commits
    first, and both tickets then share that one customer.
    """
    session.execute(
        pg_insert(Customer)
        .values(email=email, name=name or "")
        .on_conflict_do_nothing(index_elements=[text("lower(email)")])
    )
    customer = repository.by_email(session, email)
    if customer is None:  # the insert or the row it conflicted with must be there
        raise RuntimeError(f"customer {email} neither inserted nor found")
    return customer


# --- GDPR: this domain's part of a subject's export and erasure --------------------------------


def subject_record(session: Session, email: str) -> Customer | None:
    """The customer record with this address (case-insensitively), if any."""
    return repository.by_email(session, email)


def export_subject(session: Session, subject: Subject) -> dict[str, Any] | None:
    if subject.customer_id is None:
        return None
    customer = get_customer(session, subject.customer_id)
    fields = ("id", "email", "name", "company", "phone", "tier", "created_at", "updated_at")
    return {name: getattr(customer, name) for name in fields}


def erase_subject(session: Session, subject: Subject, *, now: datetime) -> int:
    """The subject's customer record becomes a tombstone (``Subject.tombstone``); its id, tier
    and tickets stay."""
    if subject.customer_id is None:
        return 0
    repository.tombstone(session, subject.customer_id, email=subject.tombstone, now=now)
    return 1
