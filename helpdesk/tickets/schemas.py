"""Request and response bodies of /tickets."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, EmailStr, Field

from helpdesk.core.input import MAX_ROW_ID, RequestModel
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
    sla_breached: bool
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
    customer_id: int | None = Field(default=None, le=MAX_ROW_ID)
    tag: str | None = Field(default=None, max_length=64)
    q: str | None = Field(default=None, max_length=200)
    created_after: datetime | None = None
    created_before: datetime | None = None
