"""Request and response bodies of /tickets."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class TicketIn(BaseModel):
    title: str = Field(max_length=1000)
    description: str = Field(default="", max_length=50_000)
    priority: TicketPriority = TicketPriority.MEDIUM

    _title = field_validator("title")(_clean_title)


class TicketPatch(BaseModel):
    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=50_000)
    status: TicketStatus | None = None
    priority: TicketPriority | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else _clean_title(value)


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    status: TicketStatus
    priority: TicketPriority
    created_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None
