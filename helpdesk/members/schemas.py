"""Request and response bodies of /members."""

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


def _clean_skills(skills: list[str]) -> list[str]:
    # Stored as ticket categories are (trimmed, lower case), so a skill matches its category.
    cleaned = sorted({skill.strip().lower() for skill in skills if skill.strip()})
    if any(len(skill) > 64 for skill in cleaned):
        raise ValueError("a skill holds at most 64 characters")
    return cleaned


Skills = Annotated[list[str], Field(max_length=50), AfterValidator(_clean_skills)]


class MemberPatch(RequestModel):
    """What to change about a member; a field left out (or null) stays as it is."""

    role: str | None = Field(default=None, min_length=1, max_length=64)
    skills: Skills | None = Field(
        default=None,
        description="Ticket categories this member is routed first (replaces the list; "
        "trimmed, lower case).",
    )
    senior: bool | None = Field(
        default=None, description="Critical tickets are routed first to senior members."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.role is None and self.skills is None and self.senior is None:
            raise ValueError("name at least one of role, skills and senior")
        return self


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    skills: list[str] = Field(default_factory=list)
    senior: bool = False
    created_at: datetime


class MemberAdded(MemberOut):
    invitation_token: str | None = Field(
        default=None, description="Shown once: the new member sets a password with it."
    )


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None
