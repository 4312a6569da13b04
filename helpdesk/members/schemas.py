"""Request and response bodies of /members."""

import uuid
from datetime import datetime

from pydantic import BaseModel, EmailStr, Field

from helpdesk.core.input import RequestModel


class MemberIn(RequestModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=64)
    password: str | None = Field(
        default=None,
        min_length=8,
        max_length=1024,
        description="For a new identity; without one, the response carries an invitation token.",
    )


class MemberPatch(RequestModel):
    role: str = Field(min_length=1, max_length=64)


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime


class MemberAdded(MemberOut):
    invitation_token: str | None = Field(
        default=None, description="Shown once: the new member sets a password with it."
    )


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None
