"""Writing to the outbox, in the caller's transaction; the delivery worker sends after commit."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.outbox.models import OutboxMessage
from helpdesk.webhooks.models import Webhook

WEBHOOK_EVENTS = ("ticket.created", "ticket.updated", "comment.created")


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
