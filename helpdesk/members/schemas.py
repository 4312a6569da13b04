"""Request and response bodies of /members."""

import uuid
from datetime import datetime

from pydantic import BaseModel, EmailStr, Field, ValidationInfo, field_validator

from auth.passwords import MAX_PASSWORD_LENGTH, require_usable_password
from helpdesk.core.input import RequestModel


class MemberIn(RequestModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=64)
    password: str | None = Field(
        default=None,
        max_length=MAX_PASSWORD_LENGTH,
        description="For a new identity (8 to 256 characters, not a common password, not the "
        "address); without one, the response carries an invitation token.",
    )

    @field_validator("password")
    @classmethod
    def _usable_password(cls, password: str | None, info: ValidationInfo) -> str | None:
        if password is None:
            return None
        return require_usable_password(password, email=info.data.get("email"))


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
