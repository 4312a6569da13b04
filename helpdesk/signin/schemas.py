"""Request and response bodies of the /auth endpoints."""

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from auth.passwords import MAX_LOGIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH
from helpdesk.core.input import RequestModel


class LoginIn(RequestModel):
    email: str = Field(min_length=3, max_length=320)
    # Longer than a new password may be: ones set before the 256 cap must still sign in.
    password: str = Field(min_length=1, max_length=MAX_LOGIN_PASSWORD_LENGTH)
    tenant: str | None = Field(default=None, max_length=40)


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class MeOut(BaseModel):
    user: UserOut
    tenant: TenantOut | None
    role: str
    permissions: list[str]


class InvitationAccept(RequestModel):
    token: str = Field(min_length=1, max_length=200)
    # The service applies the rule (it knows the member's address); this only caps.
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class InvitationAccepted(BaseModel):
    email: str
