"""Request and response bodies of /customers."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from helpdesk.core.input import RequestModel


class CustomerTier(StrEnum):
    FREE = "free"
    BASIC = "basic"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


# As written; the service reads it against the workspace's phone region and stores E.164
# (customers/phones.py), since the region is a setting the schema cannot see.
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Name = Annotated[str, Field(max_length=200)]


class CustomerIn(RequestModel):
    email: EmailStr
    name: Name = ""
    company: Name | None = None
    phone: Phone | None = None
    tier: CustomerTier = CustomerTier.BASIC


class CustomerPatch(RequestModel):
    email: EmailStr | None = None
    name: Name | None = None
    company: Name | None = None
    phone: Phone | None = None
    tier: CustomerTier | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    company: str | None
    phone: str | None
    tier: CustomerTier
    created_at: datetime


class CustomerRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None
