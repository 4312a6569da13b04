"""Request and response bodies of /webhooks. The secret goes in and never comes back out."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
)

from helpdesk.core.input import RequestModel


class WebhookEvent(StrEnum):
    """The events the outbox publishes (outbox.service.WEBHOOK_EVENTS; a test keeps them equal)."""

    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    COMMENT_CREATED = "comment.created"
    TICKET_SLA_BREACHED = "ticket.sla_breached"


def _distinct(events: list[WebhookEvent]) -> list[WebhookEvent]:
    return list(dict.fromkeys(events))


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the secret cannot be blank")
    return value


MAX_URL_LENGTH = 2000  # the column is varchar(2000)


def _fits_column(url: HttpUrl) -> HttpUrl:
    # UrlConstraints bounds the text as sent; normalising can lengthen it (percent-encoding
    # turns one "é" into six characters), and the normalised form is what is stored.
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(
            f"the URL holds more than {MAX_URL_LENGTH} characters once percent-encoded"
        )
    return url


# HttpUrl admits http and https only, so file:, ftp: or javascript: targets are a 422.
WebhookUrl = Annotated[
    HttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH), AfterValidator(_fits_column)
]


class WebhookIn(RequestModel):
    url: WebhookUrl
    events: Annotated[list[WebhookEvent], Field(min_length=1), AfterValidator(_distinct)]
    secret: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    active: bool
    # Every webhook has a secret; this says so without echoing it.
    secret_set: bool = True
    created_at: datetime


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None
