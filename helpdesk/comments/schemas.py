"""Request and response bodies of /tickets/{id}/comments."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from helpdesk.core.input import RequestModel
from helpdesk.tickets.schemas import MAX_BODY


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("a comment needs some text")
    return value


class CommentIn(RequestModel):
    body: Annotated[str, Field(max_length=MAX_BODY), AfterValidator(_not_blank)]
    public: bool = True


class CommentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    author_id: uuid.UUID
    body: str
    public: bool
    created_at: datetime


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None
