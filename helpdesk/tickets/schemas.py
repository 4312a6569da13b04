"""Request and response bodies of /tickets."""

import uuid
from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, EmailStr, Field, model_validator

from helpdesk.core.input import MAX_ROW_ID, MIN_ROW_ID, RequestModel
from helpdesk.customers.schemas import CustomerRef

MAX_BODY = 50_000


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def _clean_title(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 200:
        raise ValueError("a title holds 1 to 200 characters after trimming")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("a title may not contain control characters")
    return value


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({tag.strip().lower() for tag in tags if tag.strip()})
    if any(len(tag) > 64 for tag in cleaned):
        raise ValueError("a tag holds at most 64 characters")
    return cleaned


def _clean_category(value: str | None) -> str | None:
    value = value.strip().lower() if value else None
    return value or None


Title = Annotated[str, Field(max_length=1000), AfterValidator(_clean_title)]
Description = Annotated[str, Field(max_length=MAX_BODY)]
Tags = Annotated[list[str], Field(max_length=20), AfterValidator(_clean_tags)]
Category = Annotated[str | None, Field(max_length=64), AfterValidator(_clean_category)]


class TicketIn(RequestModel):
    title: Title
    description: Description = ""
    priority: TicketPriority = TicketPriority.MEDIUM
    category: Category = None
    tags: Tags = Field(default_factory=list)
    customer_email: EmailStr | None = Field(
        default=None, description="Required unless the caller is a customer (then it is theirs)."
    )
    customer_name: str | None = Field(default=None, max_length=200)


class TicketPatch(RequestModel):
    title: Title | None = None
    description: Description | None = None
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    category: Category = None
    tags: Tags | None = None
    assignee_id: uuid.UUID | None = None


class TicketOut(BaseModel):
    id: int
    title: str
    description: str
    status: TicketStatus
    priority: TicketPriority
    category: str | None
    tags: list[str]
    customer: CustomerRef | None
    assignee_id: uuid.UUID | None
    sla_due_at: datetime | None
    sla_breached: bool = Field(
        description="True from the moment the first-response target passes without a first "
        "response."
    )
    resolution_due_at: datetime | None
    resolution_breached: bool = Field(
        description="True once the resolution target passes unresolved; the clock stands "
        "still while the ticket is pending."
    )
    escalated: bool
    created_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class TicketFilters(RequestModel):
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assignee_id: uuid.UUID | None = None
    customer_id: int | None = Field(default=None, ge=MIN_ROW_ID, le=MAX_ROW_ID)
    tag: str | None = Field(default=None, max_length=64)
    q: str | None = Field(default=None, max_length=200)
    created_after: datetime | None = None
    created_before: datetime | None = None
    sla_breached: bool | None = Field(
        default=None, description="Tickets whose first-response target passed unanswered."
    )
    unassigned: bool | None = Field(default=None, description="Tickets with no assignee.")
    urgent: bool | None = Field(
        default=None, description="Open or in progress, unassigned, high or critical."
    )


# Bulk changes (POST /tickets/bulk): one change applied to many tickets at once.
MAX_BULK_TICKETS = 500


class BulkChange(RequestModel):
    """What to set on every ticket; a field left out stays as it is. ``assignee_id: null``
    unassigns; status, priority and tags, when given, must hold a value."""

    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assignee_id: uuid.UUID | None = None
    tags: Tags | None = Field(default=None, description="Replaces each ticket's tags.")

    @model_validator(mode="after")
    def _one_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("name what to change: status, priority, assignee_id or tags")
        for field in ("status", "priority", "tags"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} may not be null; leave it out to keep it")
        return self


def _distinct(ids: list[int]) -> list[int]:
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise ValueError(f"each ticket once: {', '.join(map(str, repeated))} repeated")
    return ids


TicketId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class BulkIn(RequestModel):
    ids: Annotated[
        list[TicketId],
        Field(min_length=1, max_length=MAX_BULK_TICKETS),
        AfterValidator(_distinct),
    ]
    change: BulkChange


class BulkOut(BaseModel):
    changed: list[int] = Field(description="Tickets the change altered, in id order.")
    unchanged: list[int] = Field(description="Tickets that already were so, in id order.")
