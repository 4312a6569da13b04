"""Every API route the app serves, walked from the app itself: what a call leaves on the trails.

A request that changes anything in a workspace or reads personal data leaves exactly one event on
the workspace's trail; sign-ins and workspace lifecycle leave theirs on the platform's trail; a
route that does neither leaves none, and says why below. A route missing from these tables fails
the walk, so a new route cannot ship unaudited by omission. How to reach each route's 2xx, and
which callers may, come from the role matrix (its tables are walked against the app too).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from audit.models import AuditEvent, PlatformAuditEvent
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tests.e2e import test_role_matrix as matrix
from tests.support.factories import Factory
from tests.support.routes import api_routes, declaration

pytestmark = pytest.mark.e2e

API = "/api/v1"

# The role matrix's module-scoped world (one workspace, a member of each role, one of everything)
# and its client, shared rather than rebuilt.
api = matrix.api
world = matrix.world

WORKSPACE, PLATFORM = "workspace", "platform"


@dataclass(frozen=True)
class Audited:
    trail: str  # WORKSPACE or PLATFORM
    action: str
    personal_data: bool | None = None  # checked where the event's reason is personal data


def _ws(action: str, *, personal: bool | None = None) -> Audited:
    return Audited(WORKSPACE, action, personal)


def _platform(action: str) -> Audited:
    return Audited(PLATFORM, action)


# Keyed like the role matrix's rows, variants included. Reads of personal data carry
# personal_data=True: that flag is why they are on the trail at all.
AUDITED: dict[str, Audited] = {
    "POST /platform/tenants": _platform("tenant.create"),
    "PATCH /platform/tenants/{slug}": _platform("tenant.rename"),
    "DELETE /platform/tenants/{slug}": _platform("tenant.delete"),
    "POST /auth/login": _platform("auth.login"),
    "POST /auth/invitations/accept": _platform("auth.invitation_accepted"),
    "POST /tickets": _ws("ticket.create"),
    "GET /tickets": _ws("ticket.list", personal=True),
    "GET /tickets/mine": _ws("ticket.list", personal=True),
    "GET /tickets/queue": _ws("ticket.list", personal=True),
    "GET /tickets/{ticket_id}": _ws("ticket.read", personal=True),
    "PATCH /tickets/{ticket_id}": _ws("ticket.update"),
    "PATCH /tickets/{ticket_id} assign": _ws("ticket.update"),
    "DELETE /tickets/{ticket_id}": _ws("ticket.delete"),
    "POST /tickets/{ticket_id}/comments public": _ws("comment.create"),
    "POST /tickets/{ticket_id}/comments internal": _ws("comment.create"),
    "GET /tickets/{ticket_id}/comments": _ws("comment.list", personal=True),
    "GET /customers": _ws("customer.list", personal=True),
    "GET /customers/{customer_id}": _ws("customer.read", personal=True),
    "POST /customers": _ws("customer.create"),
    "PATCH /customers/{customer_id}": _ws("customer.update"),
    "GET /members": _ws("member.list", personal=True),
    "POST /members": _ws("member.add"),
    "PATCH /members/{user_id}": _ws("member.role_change"),
    "DELETE /members/{user_id}": _ws("member.remove"),
    "POST /roles": _ws("role.create"),
    "PATCH /roles/{name}": _ws("role.update"),
    "DELETE /roles/{name}": _ws("role.delete"),
    "POST /webhooks": _ws("webhook.create"),
    "DELETE /webhooks/{webhook_id}": _ws("webhook.delete"),
    # Reading the trail is audited, as auditors expect; so is checking it.
    "GET /audit/events": _ws("audit.read", personal=True),
    "GET /audit/export": _ws("audit.export", personal=True),
    "GET /audit/verify": _ws("audit.verify"),
    "GET /gdpr/subjects/{email}/export": _ws("gdpr.export", personal=True),
    "POST /gdpr/subjects/{email}/erase": _ws("gdpr.erase"),
    "PUT /retention/policy": _ws("retention.policy_update"),
    "POST /retention/run": _ws("retention.run"),
    "PUT /settings": _ws("settings.update"),
}

# Routes that neither change a workspace nor read someone else's personal data: no event.
NOT_AUDITED: dict[str, str] = {
    "GET /auth/me": "the caller's own identity, read by the caller",
    "GET /platform/tenants": "workspace slugs, names and states: no personal data",
    "GET /platform/tenants/{slug}": "one workspace's slug, name and state: no personal data",
    "GET /roles": "role names and permission sets: no personal data",
    "GET /webhooks": "endpoint URLs and event names, secrets never shown: no personal data",
    "GET /retention/policy": "three settings: no personal data",
    "GET /settings": "SLA hours and automation switches: no personal data",
    # Session upkeep in public, outside any workspace; the platform trail keeps sign-ins
    # (DESIGN.md: logins, failed logins and workspace lifecycle), not token rotation.
    "POST /auth/refresh": "rotates the caller's own session token, outside any workspace",
    "POST /auth/logout": "revokes the caller's own session token, outside any workspace",
}

ROWS = {**matrix.EXPECTED, **matrix.PUBLIC}
MEMBERS = ("admin", "agent", "viewer", "compliance", "customer", "custom")


def _route(row: str) -> tuple[str, str]:
    method, path, *_variant = row.split()
    return method, path


def test_every_served_route_is_classified_once(app: FastAPI) -> None:
    served = api_routes(app)
    rows = set(AUDITED) | set(NOT_AUDITED)
    assert not set(AUDITED) & set(NOT_AUDITED)
    assert {_route(row) for row in rows} == set(served)
    # Walked with the role matrix's calls: every row has a way to reach its 2xx.
    assert rows == set(ROWS)
    # Only a route outside every workspace may change something without an event.
    unaudited_writes = {
        row
        for row in NOT_AUDITED
        if _route(row)[0] != "GET" and declaration(served[_route(row)]).tenant_scoped
    }
    assert unaudited_writes == set()


@dataclass(frozen=True)
class Marks:
    """Where both trails stood before a call."""

    workspace: int
    platform: int


def _marks(runtime: Runtime, world: matrix.World) -> Marks:
    ws = world.ws
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        last_ws = session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))
    with transaction(runtime.sessions) as session:
        last_platform = session.scalar(select(func.coalesce(func.max(PlatformAuditEvent.id), 0)))
    return Marks(int(last_ws or 0), int(last_platform or 0))


def _since(
    runtime: Runtime, world: matrix.World, marks: Marks
) -> tuple[list[AuditEvent], list[PlatformAuditEvent]]:
    ws = world.ws
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.id > marks.workspace).order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
    with transaction(runtime.sessions) as session:
        platform = list(
            session.scalars(
                select(PlatformAuditEvent)
                .where(PlatformAuditEvent.id > marks.platform)
                .order_by(PlatformAuditEvent.id)
            )
        )
        session.expunge_all()
    return events, platform


def _allowed(row: str) -> str:
    """The first caller the role matrix lets through: a member, else the operator, else nobody
    (a public route)."""
    if row in matrix.PUBLIC:
        return "anonymous"
    statuses = dict(zip(matrix.CALLERS, matrix.EXPECTED[row], strict=True))
    for caller in (*MEMBERS, "operator"):
        if statuses[caller] < 300:
            return caller
    raise AssertionError(f"{row}: no caller may call it")


def _actor_id(caller: str, world: matrix.World) -> uuid.UUID | None:
    if caller == "operator":
        return world.operator.user_id
    if caller == "anonymous":
        return None
    return world.members[caller].user_id


def _call(
    api: TestClient, factory: Factory, world: matrix.World, runtime: Runtime, row: str, caller: str
) -> tuple[Response, Marks]:
    """Build the row's call (its setup may write events of its own), then mark both trails,
    then make the call."""
    method, _ = _route(row)
    requests: dict[str, Callable[[matrix.Setup], matrix.Call]] = {
        **matrix.REQUESTS,
        **matrix.PUBLIC_REQUESTS,
    }
    call = requests[row](matrix.Setup(api, factory, world))
    headers = {} if caller == "anonymous" else matrix._headers(caller, world, factory)
    marks = _marks(runtime, world)
    response = api.request(
        method, API + call.path, json=call.json, params=call.params, headers=headers
    )
    return response, marks


@pytest.mark.parametrize("row", list(ROWS))
def test_an_allowed_call_leaves_the_events_its_route_promises(
    api: TestClient, world: matrix.World, factory: Factory, runtime: Runtime, row: str
) -> None:
    caller = _allowed(row)
    response, marks = _call(api, factory, world, runtime, row, caller)
    assert response.is_success, f"{row} as {caller}: {response.text}"
    events, platform = _since(runtime, world, marks)
    request_id = response.headers["x-request-id"]
    promised = AUDITED.get(row)

    if promised is None:
        assert (events, platform) == ([], []), NOT_AUDITED[row]
        return
    if promised.trail == PLATFORM:
        assert events == []
        assert [(e.action, e.outcome, e.request_id) for e in platform] == [
            (promised.action, "success", request_id)
        ]
        if caller != "anonymous":
            assert platform[0].actor_id == _actor_id(caller, world)
        return
    assert platform == []
    assert [(e.action, e.outcome, e.request_id) for e in events] == [
        (promised.action, "success", request_id)
    ]
    (event,) = events
    assert event.actor_id == _actor_id(caller, world)
    if promised.personal_data is not None:
        assert event.personal_data is promised.personal_data


def _refused_member(row: str) -> str | None:
    """A workspace member the role matrix refuses (403) on this row, if any."""
    if row not in matrix.EXPECTED:
        return None
    statuses = dict(zip(matrix.CALLERS, matrix.EXPECTED[row], strict=True))
    return next((caller for caller in MEMBERS if statuses[caller] == 403), None)


REFUSED = [
    pytest.param(
        row,
        member,
        id=f"{row} as {member}",
    )
    for row in matrix.EXPECTED
    if (member := _refused_member(row)) is not None
]


@pytest.mark.parametrize(("row", "member"), REFUSED)
def test_a_refused_call_leaves_one_denied_event(
    api: TestClient,
    world: matrix.World,
    factory: Factory,
    runtime: Runtime,
    row: str,
    member: str,
) -> None:
    response, marks = _call(api, factory, world, runtime, row, member)
    assert response.status_code == 403, response.text
    events, platform = _since(runtime, world, marks)
    trail: list[Any] = platform if row.split()[1].startswith("/platform/") else events
    assert [(e.outcome, e.actor_id, e.request_id) for e in trail] == [
        ("denied", world.members[member].user_id, response.headers["x-request-id"])
    ]
    (event,) = trail
    where = event.changes if trail is events else event.details
    assert where["route"] == _route(row)[1]
    assert event.action  # the permission that was missing, or access.denied
