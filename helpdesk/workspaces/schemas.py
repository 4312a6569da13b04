"""Request and response bodies of /platform/tenants."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from helpdesk.core.input import RequestModel


class WorkspaceIn(RequestModel):
    # Only a size cap: the slug rule itself is checked by tenants.slugs, whose 422 states it.
    slug: str = Field(max_length=200, description="3-40 characters: [a-z][a-z0-9_]*, not 'pg_...'")
    name: str = Field(min_length=1, max_length=200)
    admin_email: EmailStr
    admin_password: str = Field(min_length=8, max_length=1024)
    admin_name: str | None = Field(default=None, max_length=200)


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
