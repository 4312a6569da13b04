"""Every string a request can store fits its column: a value too long for varchar(n) is a 422
naming the field, never a 500 from PostgreSQL. The table maps each stored request field to its
column; a walk over every request model finds any string field the table forgot."""

import typing
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel, EmailStr, HttpUrl, ValidationError
from sqlalchemy import ARRAY, Column, String

import helpdesk.app  # noqa: F401 - imports every route, hence every request model
from auth.models import CustomRole, Member
from helpdesk.core.input import RequestModel
from helpdesk.customers.models import Customer
from helpdesk.customers.schemas import CustomerIn, CustomerPatch
from helpdesk.members.schemas import MemberIn, MemberPatch
from helpdesk.roles.schemas import RoleIn
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.sla.schemas import WorkspaceSettingsIn
from helpdesk.tickets.models import Ticket, TicketTag
from helpdesk.tickets.schemas import BulkChange, TicketIn, TicketPatch
from helpdesk.webhooks.models import Webhook
from helpdesk.webhooks.schemas import WebhookIn
from helpdesk.workspaces.schemas import WorkspaceIn, WorkspacePatch
from tenants.models import Tenant

pytestmark = pytest.mark.unit


def _plain(n: int) -> list[Any]:
    return ["a" * n, "é" * n, " " + "b" * n + " "]


def _email(n: int) -> list[Any]:
    return [f"{'a' * 64}@{'b' * (n - 70)}.example.com"]


def _url(n: int) -> list[Any]:
    # Raw text within the bound that grows when pydantic normalises it (percent-encoding).
    return [
        "https://example.com/" + "a" * n,
        "https://example.com/" + "é" * (n // 4),
        "https://example.com/?" + '"' * (n // 2),
    ]


def _tags(n: int) -> list[Any]:
    return [["t" * n], ["T" * n]]


def _phone(n: int) -> list[Any]:
    return ["+4930" + "1" * (n - 5), "+49 30 " + "1 " * n]


def _regions(n: int) -> list[Any]:
    return ["U" * n, "us" + "s" * (n - 2)]


def _weekdays(n: int) -> list[Any]:
    return ["1" * n, "1234567" * 3]


# (request model, field) -> (the column it is stored in, hostile values given that column's n+1).
Maker = Callable[[int], list[Any]]
STORED: dict[tuple[type[BaseModel], str], tuple[Column[Any], Maker]] = {
    (CustomerIn, "email"): (Customer.__table__.c.email, _email),
    (CustomerIn, "name"): (Customer.__table__.c.name, _plain),
    (CustomerIn, "company"): (Customer.__table__.c.company, _plain),
    (CustomerIn, "phone"): (Customer.__table__.c.phone, _phone),
    (CustomerPatch, "email"): (Customer.__table__.c.email, _email),
    (CustomerPatch, "name"): (Customer.__table__.c.name, _plain),
    (CustomerPatch, "company"): (Customer.__table__.c.company, _plain),
    (CustomerPatch, "phone"): (Customer.__table__.c.phone, _phone),
    (TicketIn, "title"): (Ticket.__table__.c.title, _plain),
    (TicketIn, "category"): (Ticket.__table__.c.category, _plain),
    (TicketIn, "tags"): (TicketTag.__table__.c.tag, _tags),
    (TicketIn, "customer_email"): (Customer.__table__.c.email, _email),
    (TicketIn, "customer_name"): (Customer.__table__.c.name, _plain),
    (TicketPatch, "title"): (Ticket.__table__.c.title, _plain),
    (TicketPatch, "category"): (Ticket.__table__.c.category, _plain),
    (TicketPatch, "tags"): (TicketTag.__table__.c.tag, _tags),
    (BulkChange, "tags"): (TicketTag.__table__.c.tag, _tags),
    (MemberIn, "email"): (Member.__table__.c.email, _email),
    (MemberIn, "name"): (Member.__table__.c.name, _plain),
    (MemberIn, "role"): (Member.__table__.c.role, _plain),
    (MemberPatch, "role"): (Member.__table__.c.role, _plain),
    (MemberPatch, "skills"): (Member.__table__.c.skills, _tags),
    (RoleIn, "name"): (CustomRole.__table__.c.name, _plain),
    (WorkspaceSettingsIn, "timezone"): (WorkspaceSettings.__table__.c.timezone, _plain),
    (WorkspaceSettingsIn, "business_days"): (
        WorkspaceSettings.__table__.c.business_days,
        _weekdays,
    ),
    (WorkspaceSettingsIn, "phone_region"): (
        WorkspaceSettings.__table__.c.phone_region,
        _regions,
    ),
    (WebhookIn, "url"): (Webhook.__table__.c.url, _url),
    (WebhookIn, "secret"): (Webhook.__table__.c.secret, _plain),
    (WorkspaceIn, "name"): (Tenant.__table__.c.name, _plain),
    (WorkspaceIn, "admin_email"): (Member.__table__.c.email, _email),
    (WorkspaceIn, "admin_name"): (Member.__table__.c.name, _plain),
    (WorkspacePatch, "name"): (Tenant.__table__.c.name, _plain),
}

# String fields that are not stored as they come, each with why it needs no column bound.
NOT_STORED: dict[tuple[str, str], str] = {
    ("TicketIn", "description"): "text column; 50,000 characters by API.md",
    ("TicketPatch", "description"): "text column; 50,000 characters by API.md",
    ("CommentIn", "body"): "text column; 50,000 characters by API.md",
    ("RoleIn", "permissions"): "each must name a known permission",
    ("RolePatch", "permissions"): "each must name a known permission",
    # The slug rule (3 to 40 of [a-z0-9_]) is the service's, a 422 naming "slug" that states the
    # rule; the schema caps only the size (tests/e2e/test_contract.py sends 41 characters).
    ("WorkspaceIn", "slug"): "checked against the slug rule, at most 40, before it is stored",
    ("TicketFilters", "tag"): "a filter, compared and never stored",
    ("TicketFilters", "q"): "a filter, compared and never stored",
    ("AuditFilterParams", "action"): "a filter, compared and never stored",
    ("AuditFilterParams", "target_type"): "a filter, compared and never stored",
    ("AuditFilterParams", "target_id"): "a filter, compared and never stored",
    ("LoginIn", "email"): "compared and never stored",
    ("LoginIn", "password"): "verified and never stored",
    ("LoginIn", "tenant"): "compared and never stored",
    ("RefreshIn", "refresh_token"): "hashed before it is looked up",
    ("InvitationAccept", "token"): "hashed before it is looked up",
    ("InvitationAccept", "password"): "hashed; the hash has a fixed size",
    ("MemberIn", "password"): "hashed; the hash has a fixed size",
    ("WorkspaceIn", "admin_password"): "hashed; the hash has a fixed size",
}


def _request_models() -> Iterator[type[BaseModel]]:
    pending: list[type[BaseModel]] = [RequestModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model is not RequestModel:
            yield model


def _leaves(annotation: Any) -> Iterator[Any]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        yield from _leaves(args[0])
    elif args:
        for arg in args:
            yield from _leaves(arg)
    else:
        yield annotation


def _holds_text(annotation: Any) -> bool:
    """Whether a value of ``annotation`` can carry free text (an enum or a number cannot)."""
    for leaf in _leaves(annotation):
        if leaf in (EmailStr, HttpUrl) or (
            isinstance(leaf, type) and issubclass(leaf, str) and not issubclass(leaf, Enum)
        ):
            return True
    return False


def test_every_string_field_of_every_request_model_is_accounted_for() -> None:
    stored = {(model.__name__, name) for model, name in STORED}
    found = set()
    for model in _request_models():
        for name, field in model.model_fields.items():
            if _holds_text(field.annotation):
                found.add((model.__name__, name))
    unaccounted = found - stored - set(NOT_STORED)
    assert unaccounted == set()
    assert set(NOT_STORED) | stored <= found


def _minimal(model: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    """A body in which only ``field`` can be wrong."""
    base: dict[type[BaseModel], dict[str, Any]] = {
        CustomerIn: {"email": "c@example.com", "name": "C"},
        TicketIn: {"title": "t", "customer_email": "c@example.com"},
        MemberIn: {"email": "m@example.com", "name": "M", "role": "agent"},
        MemberPatch: {"role": "agent"},
        RoleIn: {"name": "rr", "permissions": []},
        WebhookIn: {"url": "https://example.com/", "events": ["ticket.created"], "secret": "s"},
        WorkspaceIn: {
            "slug": "acme",
            "name": "Acme",
            "admin_email": "a@example.com",
            "admin_password": "a quiet tangerine harbour",
        },
    }
    return {**base.get(model, {}), field: value}


def _validate(model: type[BaseModel], data: dict[str, Any]) -> tuple[BaseModel | None, list[Any]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, list(exc.errors())


@pytest.mark.parametrize(
    ("model", "field"), sorted(STORED, key=lambda key: (key[0].__name__, key[1]))
)
def test_a_value_too_long_for_its_column_is_refused_naming_the_field(
    model: type[BaseModel], field: str
) -> None:
    column, hostile = STORED[(model, field)]
    # A list stored in an array column: each item must fit the array's element type.
    kind = column.type.item_type if isinstance(column.type, ARRAY) else column.type
    assert isinstance(kind, String)
    assert kind.length is not None
    limit = kind.length
    for value in hostile(limit + 1):
        accepted, errors = _validate(model, _minimal(model, field, value))
        if accepted is None:
            assert {error["loc"][0] for error in errors} == {field}, (value, errors)
            continue
        # Accepted: then what is stored fits (a validator may trim, dedupe or reformat).
        stored = getattr(accepted, field)
        for item in stored if isinstance(stored, list) else [stored]:
            assert len(str(item)) <= limit, (field, len(str(item)), limit)
