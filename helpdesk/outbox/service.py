"""Writing to the outbox, in the caller's transaction; the delivery worker sends after commit."""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit.gdpr import ERASED, NOT_SENT, REDACTED, Subject
from helpdesk.outbox.models import OutboxMessage
from helpdesk.webhooks.models import Webhook

WEBHOOK_EVENTS = ("ticket.created", "ticket.updated", "comment.created", "ticket.sla_breached")


def publish_event(session: Session, event: str, payload: dict[str, Any]) -> int:
    """Queue one delivery per active webhook subscribed to ``event``; return how many."""
    hooks = session.scalars(
        select(Webhook.id).where(Webhook.active.is_(True), Webhook.events.contains([event]))
    ).all()
    session.add_all(
        OutboxMessage(kind="webhook", event=event, webhook_id=hook_id, payload=payload)
        for hook_id in hooks
    )
    session.flush()
    return len(hooks)


def queue_email(session: Session, *, event: str, to: str, subject: str, body: str) -> None:
    session.add(
        OutboxMessage(
            kind="email", event=event, recipient=to, payload={"subject": subject, "body": body}
        )
    )
    session.flush()


# --- GDPR: this domain's part of a subject's export and erasure --------------------------------

# provider: which e-mail service processed the message, which a subject may ask about.
_MESSAGE_DOCS = text(
    "SELECT id, kind, event, recipient, payload, created_at, delivered_at, failed_at, provider"
    " FROM outbox WHERE lower(recipient) = :email ORDER BY id"
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
_UNMENTION_ATTEMPTS = text(
    "UPDATE delivery_attempts SET error = regexp_replace(error, :pattern, :erased, 'gi')"
    " WHERE error ~* :pattern"
)


def export_subject(session: Session, subject: Subject) -> list[dict[str, Any]]:
    """The messages addressed to the subject."""
    rows = session.execute(_MESSAGE_DOCS, {"email": subject.email}).mappings()
    return [dict(row) for row in rows]


def erase_subject(session: Session, subject: Subject, *, now: datetime) -> int:
    """Redact outbox copies: e-mails to the subject lose their text (one still waiting never
    goes); webhook payloads lose the subject's person objects, their comments' bodies and their
    tickets' text; every message, e-mail subjects and webhook ``changes`` diffs included, and
    every delivery error, loses its mentions of the subject. Returns how many messages changed.
    """
    session.execute(_UNMENTION_ATTEMPTS, {"pattern": subject.pattern, "erased": ERASED})
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
    """Rewrites a JSON document (a message's payload) without the subject in it."""

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
