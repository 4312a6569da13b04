"""Request and response bodies of /customers."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from helpdesk.core.input import RequestModel


class CustomerTier(StrEnum):
    FREE = "free"
    BASIC = "basic"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


def to_e164(value: str) -> str:
    """Normalise a phone number to E.164; a number without a country code must start with +."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("a phone number needs a country code, e.g. +44 20 7946 0958") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


Phone = Annotated[str, Field(max_length=40), AfterValidator(to_e164)]
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
