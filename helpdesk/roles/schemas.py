"""Request and response bodies of /roles."""

from typing import Literal

from pydantic import BaseModel, Field

from helpdesk.core.input import RequestModel


class RoleIn(RequestModel):
    name: str = Field(min_length=2, max_length=64, description="[a-z][a-z0-9_-]*")
    permissions: list[str] = Field(max_length=64)
    ticket_scope: Literal["all", "assigned"] = "all"


class RolePatch(RequestModel):
    permissions: list[str] | None = Field(default=None, max_length=64)
    ticket_scope: Literal["all", "assigned"] | None = None


class RoleOut(BaseModel):
    name: str
    builtin: bool
    permissions: list[str]
    ticket_scope: str


class RoleList(BaseModel):
    items: list[RoleOut]
    next_cursor: str | None
