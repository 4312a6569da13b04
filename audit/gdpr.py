"""GDPR subject requests inside one workspace: the access export and erasure, by email address.

Erasure keeps what the workspace counts and measures (tickets, their statuses, priorities,
categories, tags, SLA figures and timings) and removes who they were about:

- the customer record becomes a tombstone: ``erased-<id>@invalid``, no name, company or phone;
- tickets the subject requested keep everything but their title and description, which become
  "[redacted]" (the requester wrote them, or they describe the requester's problem);
- comments the subject wrote become "[redacted]";
- any other mention of the address (ticket text, comments, outbox messages, delivery errors) is
  replaced by "[erased]"; e-mails still queued to the subject are never sent;
- audit events about the subject (their own actions, events on their customer record, tickets,
  comments or membership, and any whose personal values mention the address) lose their
  personal values. Ids, actions and hashes stay, and ``personal_digest`` still covers what was
  there, so the chain verifies.

Everything is found afresh on each call and changed only where it still differs, so a second
erasure changes nothing and reports zeros. The subject's global sign-in identity (public.users),
if they have one, is outside the workspace and is not touched here.
"""

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    cast,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from audit.models import AuditEvent
from audit.queries import event_document
from audit.retention import load_policy, owner_role
from helpdesk.core.errors import Conflict
from tenants.context import TenantRef

REDACTED = "[redacted]"
ERASED = "[erased]"
NOT_SENT = "not sent: the recipient's personal data was erased (GDPR)"


@dataclass(frozen=True, slots=True)
class Subject:
    """One person, as this workspace knows them."""

    email: str  # lower-cased
    customer_id: int | None
    user_ids: tuple[uuid.UUID, ...]  # sign-in identities with this address
    ticket_ids: tuple[int, ...]  # tickets they requested
    comment_ids: tuple[int, ...]  # comments they wrote

    @property
    def pattern(self) -> str:
        """A PostgreSQL regular expression for the address as a whole word: "pat@example.com"
        is not found inside "spat@example.com" or "pat@example.com.au"."""
        # In PostgreSQL's ARE a backslash before any non-alphanumeric character means the
        # character itself; before a letter or digit it would start an escape.
        literal = "".join(c if c.isalnum() else "\\" + c for c in self.email)
        return rf"(?<![[:alnum:]._%+'-]){literal}(?![[:alnum:]_-]|\.[[:alnum:]])"

    @property
    def python_pattern(self) -> re.Pattern[str]:
        """The same, for Python's ``re``."""
        return re.compile(rf"(?<![\w.%+'-]){re.escape(self.email)}(?![\w-]|\.\w)", re.IGNORECASE)

    @property
    def tombstone(self) -> str:
        return f"erased-{self.customer_id}@invalid" if self.customer_id else "erased@invalid"


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """Rows this erasure changed (all zero when there was nothing left to erase), and the audit
    events whose hashed fields mention the address, which no erasure can change (normally none:
    the trail keeps personal values apart, in the erasable ``personal`` column)."""

    customers: int
    tickets: int
    comments: int
    messages: int
    audit_events: int
    unerasable_audit_events: int


_CUSTOMER = text("SELECT id FROM customers WHERE lower(email) = :email")
# Row-level security shows the workspace role only the users who are members here. A former
# member's id is still on the trail of what they did, with their address while it is held.
_USER_IDS = text(
    "SELECT id FROM public.users WHERE lower(email) = :email"
    " UNION SELECT actor_id FROM audit_events"
    " WHERE actor_id IS NOT NULL AND lower(personal ->> 'actor_email') = :email"
)
_TICKET_IDS = text("SELECT id FROM tickets WHERE customer_id = :customer_id ORDER BY id")
_COMMENT_IDS = text("SELECT id FROM comments WHERE author_id = ANY(:user_ids) ORDER BY id")


def find_subject(session: Session, email: str) -> Subject:
    email = email.strip().lower()
    customer_id = session.execute(_CUSTOMER, {"email": email}).scalar_one_or_none()
    user_ids = tuple(sorted(session.scalars(_USER_IDS, {"email": email}), key=str))
    tickets: Sequence[int] = ()
    if customer_id is not None:
        tickets = session.scalars(_TICKET_IDS, {"customer_id": customer_id}).all()
    comments: Sequence[int] = ()
    if user_ids:
        comments = session.scalars(_COMMENT_IDS, {"user_ids": list(user_ids)}).all()
    return Subject(email, customer_id, user_ids, tuple(tickets), tuple(comments))


def _events_about(subject: Subject) -> ColumnElement[bool]:
    personal_text = cast(AuditEvent.personal, Text)
    conditions: list[ColumnElement[bool]] = [personal_text.op("~*")(subject.pattern)]
    if subject.user_ids:
        conditions.append(AuditEvent.actor_id.in_(subject.user_ids))
        member_ids = [str(u) for u in subject.user_ids]
        conditions.append(
            and_(AuditEvent.target_type == "member", AuditEvent.target_id.in_(member_ids))
        )
    targets = {
        "customer": [subject.customer_id] if subject.customer_id else [],
        "ticket": subject.ticket_ids,
        "comment": subject.comment_ids,
    }
    for kind, ids in targets.items():
        if ids:
            conditions.append(
                and_(
                    AuditEvent.target_type == kind, AuditEvent.target_id.in_([str(i) for i in ids])
                )
            )
    return or_(*conditions)


# --- the access export -------------------------------------------------------------------------

_CUSTOMER_DOC = text(
    "SELECT id, email, name, company, phone, tier, created_at, updated_at"
    " FROM customers WHERE id = :customer_id"
)
_MEMBERSHIP_DOC = text(
    "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at"
    " FROM public.memberships m JOIN public.users u ON u.id = m.user_id"
    " WHERE lower(u.email) = :email"
)
_TICKET_DOCS = text(
    "SELECT t.id, t.title, t.description, t.status, t.priority, t.category, t.assignee_id,"
    " t.sla_due_at, t.first_response_at, t.sla_breached, t.escalated, t.status_changed_at,"
    " t.created_at, t.updated_at,"
    " coalesce((SELECT array_agg(g.tag ORDER BY g.tag) FROM ticket_tags g"
    "  WHERE g.ticket_id = t.id), '{}') AS tags"
    " FROM tickets t WHERE t.customer_id = :customer_id ORDER BY t.id"
)
# What they wrote anywhere, and the whole conversation on the tickets they requested.
_COMMENT_DOCS = text(
    "SELECT id, ticket_id, author_id, body, public, created_at,"
    " author_id = ANY(:user_ids) AS by_subject"
    " FROM comments WHERE author_id = ANY(:user_ids) OR ticket_id = ANY(:ticket_ids)"
    " ORDER BY id"
)
_MESSAGE_DOCS = text(
    "SELECT id, kind, event, recipient, payload, created_at, delivered_at, failed_at"
    " FROM outbox WHERE lower(recipient) = :email ORDER BY id"
)


def export_subject(
    session: Session, tenant: TenantRef, email: str, *, now: datetime | None = None
) -> tuple[Subject, dict[str, Any]]:
    """Everything this workspace holds about ``email``, as one document."""
    subject = find_subject(session, email)
    customer = None
    if subject.customer_id is not None:
        customer = dict(
            session.execute(_CUSTOMER_DOC, {"customer_id": subject.customer_id}).mappings().one()
        )
    ids = {"user_ids": list(subject.user_ids), "ticket_ids": list(subject.ticket_ids)}
    events = session.scalars(
        select(AuditEvent).where(_events_about(subject)).order_by(AuditEvent.id)
    )
    document = {
        "subject": subject.email,
        "workspace": {"slug": tenant.slug, "name": tenant.name},
        "generated_at": now or datetime.now(UTC),
        "customer": customer,
        "memberships": _rows(session, _MEMBERSHIP_DOC, {"email": subject.email}),
        "tickets": _rows(session, _TICKET_DOCS, {"customer_id": subject.customer_id})
        if subject.customer_id is not None
        else [],
        "comments": _rows(session, _COMMENT_DOCS, ids),
        "messages": _rows(session, _MESSAGE_DOCS, {"email": subject.email}),
        "audit_events": [event_document(e) for e in events],
    }
    return subject, document


def _rows(session: Session, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in session.execute(query, params).mappings()]


# --- erasure -----------------------------------------------------------------------------------

_TOMBSTONE_CUSTOMER = text(
    "UPDATE customers SET email = :tombstone, name = '', company = NULL, phone = NULL,"
    " updated_at = :now WHERE id = :customer_id"
)
# Status, priority, category, tags and every timestamp stay: the statistics survive.
_REDACT_TICKETS = text(
    "UPDATE tickets SET title = :redacted, description = :redacted"
    " WHERE customer_id = :customer_id AND (title <> :redacted OR description <> :redacted)"
    " RETURNING id"
)
_REDACT_COMMENTS = text(
    "UPDATE comments SET body = :redacted"
    " WHERE author_id = ANY(:user_ids) AND body <> :redacted RETURNING id"
)
# Mentions anywhere else. ``left`` keeps a title within its column when "[erased]" is longer
# than the address it replaces.
_UNMENTION_TICKETS = text(
    "UPDATE tickets SET title = left(regexp_replace(title, :pattern, :erased, 'gi'), 200),"
    " description = regexp_replace(description, :pattern, :erased, 'gi')"
    " WHERE title ~* :pattern OR description ~* :pattern RETURNING id"
)
_UNMENTION_COMMENTS = text(
    "UPDATE comments SET body = regexp_replace(body, :pattern, :erased, 'gi')"
    " WHERE body ~* :pattern RETURNING id"
)
_UNMENTION_ATTEMPTS = text(
    "UPDATE delivery_attempts SET error = regexp_replace(error, :pattern, :erased, 'gi')"
    " WHERE error ~* :pattern"
)
_MESSAGES_ABOUT = text(
    "SELECT id, kind, recipient, payload, delivered_at, failed_at, last_error FROM outbox"
    " WHERE lower(recipient) = :email OR payload::text ~* :pattern OR last_error ~* :pattern"
    " OR payload -> 'comment' ->> 'author_id' = ANY(:user_ids)"
    " OR payload -> 'ticket' ->> 'id' = ANY(:ticket_ids)"
    " ORDER BY id FOR UPDATE"
)
_UPDATE_MESSAGE = text(
    "UPDATE outbox SET recipient = :recipient, payload = CAST(:payload AS jsonb),"
    " last_error = :last_error, failed_at = :failed_at WHERE id = :id"
)


def erase_subject(
    session: Session, tenant: TenantRef, email: str, *, now: datetime | None = None
) -> tuple[Subject, ErasureCounts]:
    """Erase ``email``'s personal data from the workspace (see the module docstring)."""
    if load_policy(session).legal_hold:
        raise Conflict(
            "This workspace is under a legal hold: its data is kept unchanged until the hold is "
            "lifted, so personal data cannot be erased now.",
            code="legal_hold",
        )
    now = now or datetime.now(UTC)
    subject = find_subject(session, email)
    base = {"redacted": REDACTED, "pattern": subject.pattern, "erased": ERASED}
    customers = 0
    tickets: set[int] = set()
    comments: set[int] = set()
    if subject.customer_id is not None:
        session.execute(
            _TOMBSTONE_CUSTOMER,
            {"tombstone": subject.tombstone, "now": now, "customer_id": subject.customer_id},
        )
        customers = 1
        tickets.update(
            session.scalars(_REDACT_TICKETS, {**base, "customer_id": subject.customer_id})
        )
    if subject.user_ids:
        comments.update(
            session.scalars(_REDACT_COMMENTS, {**base, "user_ids": list(subject.user_ids)})
        )
    tickets.update(session.scalars(_UNMENTION_TICKETS, base))
    comments.update(session.scalars(_UNMENTION_COMMENTS, base))
    session.execute(_UNMENTION_ATTEMPTS, base)
    messages = _erase_messages(session, subject, now)
    with owner_role(session, tenant):
        erased_events = session.execute(
            update(AuditEvent)
            .where(AuditEvent.personal.is_not(None), _events_about(subject))
            .values(personal=null())
            .returning(AuditEvent.id)
        ).all()
    counts = ErasureCounts(
        customers=customers,
        tickets=len(tickets),
        comments=len(comments),
        messages=messages,
        audit_events=len(erased_events),
        unerasable_audit_events=chained_mentions(session, subject),
    )
    return subject, counts


def _erase_messages(session: Session, subject: Subject, now: datetime) -> int:
    """Redact outbox copies; an e-mail still waiting to go to the subject never goes."""
    rows = session.execute(
        _MESSAGES_ABOUT,
        {
            "email": subject.email,
            "pattern": subject.pattern,
            "user_ids": [str(u) for u in subject.user_ids],
            "ticket_ids": [str(t) for t in subject.ticket_ids],
        },
    ).all()
    scrubber = _Scrubber(subject)
    changed = 0
    for row in rows:
        to_subject = row.recipient is not None and row.recipient.lower() == subject.email
        payload = (
            dict.fromkeys(row.payload, REDACTED)
            if to_subject and row.kind == "email"
            else scrubber.scrub(row.payload)
        )
        recipient = subject.tombstone if to_subject else row.recipient
        last_error, failed_at = scrubber.scrub(row.last_error), row.failed_at
        if to_subject and row.delivered_at is None and row.failed_at is None:
            last_error, failed_at = NOT_SENT, now
        new = (recipient, payload, last_error, failed_at)
        if new == (row.recipient, row.payload, row.last_error, row.failed_at):
            continue
        session.execute(
            _UPDATE_MESSAGE,
            {
                "id": row.id,
                "recipient": recipient,
                "payload": json.dumps(payload),
                "last_error": last_error,
                "failed_at": failed_at,
            },
        )
        changed += 1
    return changed


class _Scrubber:
    """Rewrites a JSON document (a webhook payload) without the subject in it."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.mention = subject.python_pattern
        self.authors = {str(u) for u in subject.user_ids}
        self.tickets = set(subject.ticket_ids)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mention.sub(ERASED, value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if not isinstance(value, dict):
            return value
        out = {key: self.scrub(item) for key, item in value.items()}
        email = value.get("email")
        if isinstance(email, str) and email.lower() == self.subject.email:
            # A person object (a ticket's customer): the same tombstone as the customer record.
            out["email"] = self.subject.tombstone
            if "name" in value:
                out["name"] = ""
            out.update({key: None for key in ("company", "phone") if key in value})
        if str(value.get("author_id")) in self.authors and "body" in value:
            out["body"] = REDACTED
        if isinstance(value.get("customer"), dict) and value.get("id") in self.tickets:
            out.update({k: REDACTED for k in ("title", "description") if k in value})
        return out


def chained_mentions(session: Session, subject: Subject) -> int:
    """Events whose hashed columns mention the subject's address: rewriting those would break the
    chain, so they stay, and the erasure says how many there are."""
    chained_text = func.concat_ws(
        " ",
        cast(AuditEvent.changes, Text),
        AuditEvent.target_id,
        AuditEvent.request_id,
        AuditEvent.actor_role,
        AuditEvent.action,
    )
    query = select(func.count()).where(chained_text.op("~*")(subject.pattern))
    return int(session.execute(query).scalar_one())
