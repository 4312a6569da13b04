"""Request and response bodies of /platform/tenants."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

from auth.passwords import MAX_PASSWORD_LENGTH, require_usable_password
from helpdesk.core.input import RequestModel


class WorkspaceIn(RequestModel):
    # Only a size cap: the slug rule itself is checked by tenants.slugs, whose 422 states it.
    slug: str = Field(max_length=200, description="3-40 characters: [a-z][a-z0-9_]*, not 'pg_...'")
    name: str = Field(min_length=1, max_length=200)
    admin_email: EmailStr
    # The rule counts after NFKC normalisation, so the schema only caps; the validator below
    # gives the 422 for a short, common or own-address password.
    admin_password: str = Field(
        max_length=MAX_PASSWORD_LENGTH,
        description="8 to 256 characters; not a common password nor the admin's own address.",
    )
    admin_name: str | None = Field(default=None, max_length=200)

    @field_validator("admin_password")
    @classmethod
    def _usable_password(cls, password: str, info: ValidationInfo) -> str:
        return require_usable_password(password, email=info.data.get("admin_email"))


class WorkspacePatch(RequestModel):
    status: Literal["active", "suspended"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    status: str
    created_at: datetime


class WorkspacePage(BaseModel):
    items: list[WorkspaceOut]
    next_cursor: str | None
