"""Webhook subscriptions of a workspace: create, list, delete, under the request's tenant scope."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.core.errors import InvalidInput, NotFound
from helpdesk.webhooks.addresses import literal_address_problem
from helpdesk.webhooks.models import Webhook
from helpdesk.webhooks.schemas import WebhookIn


def create_webhook(session: Session, data: WebhookIn, *, allow_private: bool) -> Webhook:
    problem = None if allow_private else literal_address_problem(str(data.url))
    if problem:
        raise InvalidInput(f"{problem[0].upper()}{problem[1:]}.", field="url")
    webhook = Webhook(
        url=str(data.url),
        events=[event.value for event in data.events],
        secret=data.secret,
    )
    session.add(webhook)
    session.flush()
    session.refresh(webhook)
    return webhook


def list_webhooks(session: Session, *, after_id: int | None, limit: int) -> Sequence[Webhook]:
    query = select(Webhook).order_by(Webhook.id).limit(limit)
    if after_id is not None:
        query = query.where(Webhook.id > after_id)
    return session.scalars(query).all()


def delete_webhook(session: Session, webhook_id: int) -> None:
    """Remove the subscription and its secret; its pending deliveries and their history go with it
    (``ON DELETE CASCADE``), since nobody is listening for them any more."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id} in this workspace.", code="webhook_not_found")
    session.delete(webhook)
    session.flush()
