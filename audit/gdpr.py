"""GDPR subject requests inside one workspace: who the subject is, how they are mentioned, and
the audit trail's own part of the access export and of erasure.

Each domain erases and exports its own rows (customers, tickets, comments, the outbox): this
package sits below them and imports none of them, so it defines the interface
(``SubjectEraser``, ``DomainErasers``) and ``erase_subject`` runs the erasers the layer above
hands in, then the trail's own. ``helpdesk.compliance.service`` composes the domains.

Erasure keeps what the workspace counts and measures (tickets, their statuses, priorities,
categories, tags, SLA figures and timings) and removes who they were about:

- the customer record becomes a tombstone: ``erased-<id>@invalid``, no name, company or phone;
- tickets the subject requested keep everything but their title and description, which become
  "[redacted]" (the requester wrote them, or they describe the requester's problem);
- comments the subject wrote become "[redacted]";
- any other mention of the subject (ticket text, comments, outbox messages and their e-mail
  subjects, webhook ``changes`` diffs, delivery errors) is replaced by "[erased]": the address,
  the full name as a whole-word phrase in any case, and the phone in E.164, international and
  national format (``Subject.pattern``); e-mails still queued to the subject are never sent;
- audit events about the subject (their own actions, events on their customer record, tickets,
  comments or membership, and any whose personal values mention them) lose their personal
  values. Ids, actions and hashes stay, and ``personal_digest`` still covers what was there, so
  the chain verifies. A digest covers the values whole, so an event that merely mentions the
  subject loses all of them (the actor's address and IP too), not just the mention.

Everything is found afresh on each call and changed only where it still differs, so a second
erasure changes nothing and reports zeros. A subject who is a member keeps their sign-in
identity (``public.members``): removing a member is the member routes' business, with its own
rules (the last admin stays).
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import phonenumbers
from sqlalchemy import ColumnElement, Text, and_, cast, func, null, or_, select, text, update
from sqlalchemy.orm import Session

from audit.models import AuditEvent
from audit.queries import event_document
from audit.retention import load_policy, owner_role
from helpdesk.core.errors import Conflict
from tenants.context import TenantRef

REDACTED = "[redacted]"
ERASED = "[erased]"
NOT_SENT = "not sent: the recipient's personal data was erased (GDPR)"
# Between the digits of a phone number as people write it: "020 7946 0958", "(020) 7946-0958".
_PHONE_GAP = "[ ()./-]{0,2}"
_SHORTEST_NAME = 2  # a one-letter "name" would erase every word of that letter


def _pg_literal(value: str) -> str:
    """``value`` as a PostgreSQL ARE matching itself: a backslash before any non-alphanumeric
    character means the character itself; before a letter or digit it would start an escape."""
    return "".join(c if c.isalnum() else "\\" + c for c in value)


@dataclass(frozen=True, slots=True)
class Mention:
    """One way the subject is written, as a regular expression in both dialects: PostgreSQL's
    ARE (used with ``~*`` and ``regexp_replace(..., 'gi')``) and Python's ``re``."""

    pg: str
    python: str

    @classmethod
    def email(cls, email: str) -> "Mention":
        # A whole address: "pat@example.com" is not found inside "spat@example.com" or
        # "pat@example.com.au".
        return cls(
            rf"(?<![[:alnum:]._%+'-]){_pg_literal(email)}(?![[:alnum:]_-]|\.[[:alnum:]])",
            rf"(?<![\w.%+'-]){re.escape(email)}(?![\w-]|\.\w)",
        )

    @classmethod
    def name(cls, name: str) -> "Mention":
        # The full name as a whole-word phrase: "Pat Zebedee" and "PAT  ZEBEDEE", not
        # "Pat Zebedeeson" or "Spat Zebedee".
        words = name.split()
        return cls(
            "(?<![[:alnum:]_])"
            + "[[:space:]]+".join(_pg_literal(w) for w in words)
            + "(?![[:alnum:]_])",
            r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)",
        )

    @classmethod
    def digits(cls, digits: str, *, plus: bool) -> "Mention":
        # Any grouping of exactly these digits, not part of a longer number.
        body = _PHONE_GAP.join(digits)
        if plus:
            return cls(rf"(?<![0-9])\+{body}(?![0-9])", rf"(?<![0-9])\+{body}(?![0-9])")
        return cls(rf"(?<![0-9+]){body}(?![0-9])", rf"(?<![0-9+]){body}(?![0-9])")


def phone_mentions(phone: str) -> list[Mention]:
    """A stored phone number (E.164) as it may be written: "+442079460958",
    "+44 20 7946 0958", and in the national format, "020 7946 0958"."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        digits = re.sub(r"[^0-9]", "", phone)
        return [Mention.digits(digits, plus=phone.strip().startswith("+"))] if digits else []
    international = f"{number.country_code}{phonenumbers.national_significant_number(number)}"
    national = re.sub(
        r"[^0-9]",
        "",
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
    )
    found = [Mention.digits(international, plus=True)]
    if national and national != international:
        found.append(Mention.digits(national, plus=False))
    return found


@dataclass(frozen=True, slots=True)
class Subject:
    """One person, as this workspace knows them, and every way they are written down."""

    email: str  # lower-cased
    customer_id: int | None
    user_ids: tuple[uuid.UUID, ...]  # sign-in identities with this address
    ticket_ids: tuple[int, ...]  # tickets they requested
    comment_ids: tuple[int, ...]  # comments they wrote
    names: tuple[str, ...] = ()  # full names: the customer record's, the identity's
    phones: tuple[str, ...] = ()  # E.164, from the customer record
    mentions: tuple[Mention, ...] = field(init=False)

    def __post_init__(self) -> None:
        found = [Mention.email(self.email)]
        for name in dict.fromkeys(" ".join(n.split()) for n in self.names):
            if len(name) >= _SHORTEST_NAME:
                found.append(Mention.name(name))
        for phone in dict.fromkeys(self.phones):
            found.extend(phone_mentions(phone))
        object.__setattr__(self, "mentions", tuple(found))

    @property
    def pattern(self) -> str:
        """A PostgreSQL regular expression (for ``~*``) for any mention of the subject."""
        return "|".join(f"(?:{m.pg})" for m in self.mentions)

    @property
    def python_pattern(self) -> re.Pattern[str]:
        """The same, for Python's ``re``."""
        return re.compile("|".join(f"(?:{m.python})" for m in self.mentions), re.IGNORECASE)

    def unmention(self, value: str) -> str:
        return self.python_pattern.sub(ERASED, value)

    @property
    def tombstone(self) -> str:
        return f"erased-{self.customer_id}@invalid" if self.customer_id else "erased@invalid"


class SubjectEraser(Protocol):
    """A domain's erasure of the subject from its own rows; returns how many rows it changed
    (zero when nothing was left)."""

    def __call__(self, session: Session, subject: Subject, *, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class DomainErasers:
    """Each domain's eraser, handed in by the layer that knows the domains."""

    customers: SubjectEraser
    tickets: SubjectEraser
    comments: SubjectEraser
    messages: SubjectEraser


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """Rows this erasure changed (all zero when there was nothing left to erase), and the audit
    events whose hashed fields mention the subject, which no erasure can change (normally none:
    the trail keeps personal values apart, in the erasable ``personal`` column)."""

    customers: int
    tickets: int
    comments: int
    messages: int
    audit_events: int
    unerasable_audit_events: int


# Row-level security shows the workspace role only its own members. A former member's id is
# still on the trail of what they did, with their address while it is held.
_USERS = text(
    "SELECT user_id AS id, name FROM public.members WHERE lower(email) = :email"
    " UNION SELECT actor_id, NULL FROM audit_events"
    " WHERE actor_id IS NOT NULL AND lower(personal ->> 'actor_email') = :email"
)


def subject_users(session: Session, email: str) -> tuple[tuple[uuid.UUID, ...], tuple[str, ...]]:
    """The sign-in identities with this address (known to the workspace or its trail), and
    their names."""
    rows = session.execute(_USERS, {"email": email.strip().lower()}).all()
    ids = tuple(sorted({row.id for row in rows}, key=str))
    names = tuple(sorted({row.name for row in rows if row.name}))
    return ids, names


def refuse_under_legal_hold(session: Session) -> None:
    if load_policy(session).legal_hold:
        raise Conflict(
            "This workspace is under a legal hold: its data is kept unchanged until the hold is "
            "lifted, so personal data cannot be erased now.",
            code="legal_hold",
        )


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


# --- the access export: the trail's part ------------------------------------------------------

_MEMBERSHIP_DOC = text(
    "SELECT user_id, email, name, role, created_at FROM public.members WHERE lower(email) = :email"
)


def export_memberships(session: Session, subject: Subject) -> list[dict[str, Any]]:
    return [
        dict(row) for row in session.execute(_MEMBERSHIP_DOC, {"email": subject.email}).mappings()
    ]


def export_events(session: Session, subject: Subject) -> list[dict[str, Any]]:
    events = session.scalars(
        select(AuditEvent).where(_events_about(subject)).order_by(AuditEvent.id)
    )
    return [event_document(e) for e in events]


# --- erasure ------------------------------------------------------------------------------------


def erase_subject(
    session: Session,
    tenant: TenantRef,
    subject: Subject,
    domains: DomainErasers,
    *,
    now: datetime | None = None,
) -> ErasureCounts:
    """Erase ``subject``'s personal data from the workspace (see the module docstring): each
    domain's rows through its own eraser, then the trail's events."""
    refuse_under_legal_hold(session)
    now = now or datetime.now(UTC)
    return ErasureCounts(
        customers=domains.customers(session, subject, now=now),
        tickets=domains.tickets(session, subject, now=now),
        comments=domains.comments(session, subject, now=now),
        messages=domains.messages(session, subject, now=now),
        audit_events=erase_events(session, tenant, subject),
        unerasable_audit_events=chained_mentions(session, subject),
    )


def erase_events(session: Session, tenant: TenantRef, subject: Subject) -> int:
    """Drop the personal values of every event about the subject; the digest stays."""
    with owner_role(session, tenant):
        erased = session.execute(
            update(AuditEvent)
            .where(AuditEvent.personal.is_not(None), _events_about(subject))
            .values(personal=null())
            .returning(AuditEvent.id)
        ).all()
    return len(erased)


def chained_mentions(session: Session, subject: Subject) -> int:
    """Events whose hashed columns mention the subject: rewriting those would break the chain,
    so they stay, and the erasure says how many there are."""
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
