"""Compliance across the domains: a GDPR subject's export and erasure, and retention's purge of
closed tickets.

The audit package, below the domains, owns the trail and the rules (``audit.gdpr``,
``audit.retention``) but imports no domain; this module, at the top, hands it each domain's
own functions: ``erase_subject`` and ``export_subject`` of customers, tickets, comments and the
outbox, and the tickets' ``purge_closed`` / ``count_closed``.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from audit import gdpr, retention
from audit.gdpr import DomainErasers, ErasureCounts, Subject
from audit.retention import RetentionReport
from helpdesk.comments import service as comments
from helpdesk.customers import service as customers
from helpdesk.outbox import service as outbox
from helpdesk.tickets import service as tickets
from tenants.context import TenantRef
from tenants.jobs import Job, JobReport

ERASERS = DomainErasers(
    customers=customers.erase_subject,
    tickets=tickets.erase_subject,
    comments=comments.erase_subject,
    messages=outbox.erase_subject,
)


def find_subject(session: Session, email: str) -> Subject:
    """Who ``email`` is in this workspace: their customer record (name, phone), sign-in
    identities (names), the tickets they requested and the comments they wrote."""
    email = email.strip().lower()
    customer = customers.subject_record(session, email)
    user_ids, user_names = gdpr.subject_users(session, email)
    names = ((customer.name,) if customer is not None and customer.name else ()) + user_names
    phones = (customer.phone,) if customer is not None and customer.phone else ()
    customer_id = customer.id if customer is not None else None
    return Subject(
        email=email,
        customer_id=customer_id,
        user_ids=user_ids,
        ticket_ids=tuple(tickets.requested_by(session, customer_id)),
        comment_ids=tuple(comments.written_by(session, user_ids)),
        names=names,
        phones=phones,
    )


def export_subject(
    session: Session, tenant: TenantRef, email: str, *, now: datetime | None = None
) -> tuple[Subject, dict[str, Any]]:
    """Everything this workspace holds about ``email``, as one document."""
    subject = find_subject(session, email)
    document = {
        "subject": subject.email,
        "workspace": {"slug": tenant.slug, "name": tenant.name},
        "generated_at": now or datetime.now(UTC),
        "customer": customers.export_subject(session, subject),
        "memberships": gdpr.export_memberships(session, subject),
        "tickets": tickets.export_subject(session, subject),
        "comments": comments.export_subject(session, subject),
        "messages": outbox.export_subject(session, subject),
        "audit_events": gdpr.export_events(session, subject),
    }
    return subject, document


def erase_subject(
    session: Session, tenant: TenantRef, email: str, *, now: datetime | None = None
) -> tuple[Subject, ErasureCounts]:
    """Erase ``email``'s personal data from every domain of the workspace and from the trail's
    events (see ``audit.gdpr``). Refused (409) under a legal hold."""
    subject = find_subject(session, email)
    return subject, gdpr.erase_subject(session, tenant, subject, ERASERS, now=now)


# --- retention, with the tickets domain's purge bound in ----------------------------------------


def run_retention(
    session: Session,
    sessions: sessionmaker[Session],
    tenant: TenantRef,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = retention.DEFAULT_BATCH_SIZE,
) -> RetentionReport:
    """``audit.retention.run_retention`` for this application's tickets."""
    return retention.run_retention(
        session,
        sessions,
        tenant,
        tickets=tickets,
        dry_run=dry_run,
        now=now,
        batch_size=batch_size,
    )


def retention_job(*, dry_run: bool = False) -> Job[RetentionReport]:
    return retention.retention_job(tickets=tickets, dry_run=dry_run)


def run_retention_job(
    sessions: sessionmaker[Session],
    *,
    slugs: Sequence[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = retention.DEFAULT_BATCH_SIZE,
) -> JobReport[RetentionReport]:
    return retention.run_retention_job(
        sessions, tickets=tickets, slugs=slugs, dry_run=dry_run, now=now, batch_size=batch_size
    )
