"""The console's deny-by-default walk and its role matrix, apart from any browser.

Every console route declares who may call it, exactly as the API's routes do (the same
``declaration`` reader), and stays out of the OpenAPI document. The matrix below is written
from API.md's role table: each cell is the status a member of that built-in role gets, and every
request that reaches a workspace leaves exactly the audit event the matching API call leaves
(a refusal: one ``denied`` event).
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.models import AuditEvent
from helpdesk.console.web import COOKIE
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Member, Workspace
from tests.support.routes import declaration

pytestmark = pytest.mark.e2e

ROLES = ("admin", "agent", "viewer", "compliance", "customer")
# Console routes open to any signed-in member of the workspace (no permission of their own).
ANY_MEMBER = {("GET", "/app/"), ("POST", "/app/signout")}
PUBLIC = {
    ("GET", "/app/signin"),
    ("POST", "/app/signin"),
    ("GET", "/app/invitations/accept"),
    ("POST", "/app/invitations/accept"),
    ("GET", "/app/password/forgot"),
    ("POST", "/app/password/forgot"),
}


def console_routes(app: FastAPI) -> dict[tuple[str, str], object]:
    found = {}
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if isinstance(route.original_route, APIRoute) and path.startswith("/app/"):
            for method in route.methods or ():
                found[(method, path)] = route
    return found


def test_every_console_route_declares_who_may_call_it_exactly_once(app: FastAPI) -> None:
    routes = console_routes(app)
    assert len(routes) > 20, "the walk must see the console's routes"
    for key, route in routes.items():
        declared = declaration(route)  # type: ignore[arg-type]
        assert len(declared.kinds) == 1, f"{key}: {declared.kinds}"
        if declared.public:
            assert key in PUBLIC, f"{key} is public but not meant to be"
        elif not declared.permissions:
            assert key in ANY_MEMBER, f"{key} names no permission"


def test_console_routes_stay_out_of_the_openapi_document(app: FastAPI) -> None:
    assert not [p for p in app.openapi()["paths"] if p.startswith("/app")]


@dataclass
class World:
    ws: Workspace
    members: dict[str, Member]
    ticket: int
    customer: int
    client: TestClient
    # Each role's console session: its cookie and CSRF token. One client (one app lifespan)
    # sends every role's requests, naming the session in its Cookie header.
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(service_runtime: Runtime, app: FastAPI) -> Iterator[World]:
    factory = Factory(service_runtime)
    ws = factory.workspace()
    members = {"admin": ws.admin} | {r: factory.member(ws, r) for r in ROLES if r != "admin"}
    with TestClient(app, base_url=ORIGIN) as client:
        ticket = client.post(
            "/api/v1/tickets",
            json={"title": "Matrix ticket", "customer_email": members["customer"].email},
            headers=factory.headers(ws.admin, ws),
        ).json()
        world = World(ws, members, ticket["id"], ticket["customer"]["id"], client)
        for role, member in members.items():
            csrf = sign_in(client, ws, member)
            world.sessions[role] = (client.cookies[COOKIE], csrf)
            client.cookies.clear()
        yield world


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    statuses: tuple[int, ...]  # one per ROLES column
    action: str | None  # the audit event an allowed request leaves (None: a read with none)
    form: Callable[[], dict[str, str]] | None = None


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


#   path                                  adm  agt  vwr  cmp  cst   event when allowed
MATRIX = [
    Row("GET", "/app/tickets",            (200, 200, 200, 403, 303), "ticket.list"),
    Row("GET", "/app/tickets?q=Matrix",   (200, 200, 200, 403, 303), "ticket.list"),
    Row("GET", "/app/tickets/{ticket}",   (200, 200, 200, 403, 303), "ticket.read"),
    Row("GET", "/app/customers/{customer}", (200, 200, 200, 200, 403), "customer.read"),
    Row("GET", "/app/dashboard",          (200, 200, 200, 403, 303), "ticket.list"),
    Row("GET", "/app/members",            (200, 403, 403, 403, 403), "member.list"),
    Row("GET", "/app/members/routing",    (200, 403, 403, 403, 403), "member.list"),
    Row("GET", "/app/roles",              (200, 403, 403, 403, 403), None),
    Row("GET", "/app/settings",           (200, 403, 403, 403, 403), None),
    Row("GET", "/app/settings/tiers",     (200, 403, 403, 403, 403), None),
    Row("GET", "/app/webhooks",           (200, 403, 403, 403, 403), None),
    Row("GET", "/app/audit",              (200, 403, 403, 200, 403), "audit.read"),
    Row("GET", "/app/audit/verify",       (200, 403, 403, 200, 403), "audit.verify"),
    Row("GET", "/app/audit/export?format=csv", (200, 403, 403, 200, 403), "audit.export"),
    Row("GET", "/app/gdpr",               (403, 403, 403, 200, 403), None),
    Row("GET", "/app/gdpr/export?email=x@example.com", (403, 403, 403, 200, 403), "gdpr.export"),
    Row("GET", "/app/retention",          (200, 403, 403, 200, 403), None),
    Row("GET", "/app/portal",             (303, 303, 303, 403, 200), "ticket.list"),
    Row("GET", "/app/portal/tickets/{ticket}", (303, 303, 303, 403, 200), "ticket.read"),
    Row("POST", "/app/tickets/{ticket}",  (303, 303, 403, 403, 403), "ticket.update",
        lambda: {"priority": "high"}),
    Row("POST", "/app/tickets/{ticket}/comments", (303, 303, 303, 403, 403), "comment.create",
        lambda: {"body": "internal note", "visibility": "internal"}),
    Row("POST", "/app/members",           (200, 403, 403, 403, 403), "member.add",
        lambda: {"email": f"{_fresh('new')}@example.com", "name": "New", "role": "agent"}),
    Row("POST", "/app/members/{agent}/routing", (303, 403, 403, 403, 403), "member.update",
        lambda: {"skills": "billing, vpn", "senior": "on"}),
    Row("POST", "/app/customers/{customer}", (303, 303, 403, 403, 403), "customer.update",
        lambda: {"name": "Carla Renamed", "tier": "premium", "phone": "+1 202 555 0143"}),
    Row("POST", "/app/roles",             (303, 403, 403, 403, 403), "role.create",
        lambda: {"name": _fresh("role"), "permissions": "tickets.read"}),
    Row("POST", "/app/settings",          (200, 403, 403, 403, 403), "settings.update",
        lambda: {"sla_high": "3", "timezone": "UTC", "business_start": "09:00",
                 "business_end": "17:00", "day_1": "on", "day_2": "on", "auto_assign": "on",
                 "auto_assign_min_priority": "high", "auto_close_days": "7"}),
    Row("POST", "/app/settings/tiers",    (200, 403, 403, 403, 403), "settings.update",
        lambda: {"premium-critical-first_response_hours": "0.5"}),
    Row("POST", "/app/webhooks",          (303, 403, 403, 403, 403), "webhook.create",
        lambda: {"url": "http://127.0.0.1:9/hook", "secret": "s3cret",
                 "events": "ticket.created"}),
    Row("POST", "/app/gdpr/erase",        (403, 403, 403, 200, 403), "gdpr.erase",
        lambda: {"email": "gone@example.com", "confirmation": "erase gone@example.com"}),
    Row("POST", "/app/retention/run",     (403, 403, 403, 200, 403), "retention.run",
        lambda: {"mode": "dry_run"}),
    Row("POST", "/app/portal/tickets",    (422, 422, 403, 403, 303), "ticket.create",
        lambda: {"title": "Portal ticket", "description": "help"}),
    Row("POST", "/app/portal/tickets/{ticket}/comments", (303, 303, 403, 403, 303),
        "comment.create", lambda: {"body": "public reply"}),
]  # fmt: skip


def _events_after(runtime: Runtime, ws: Workspace, mark: int) -> list[tuple[str, str]]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.id > mark)
            .order_by(AuditEvent.id)
        ).all()
    return [(r.action, r.outcome) for r in rows]


def _mark(runtime: Runtime, ws: Workspace) -> int:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0


CASES = [
    pytest.param(row, index, id=f"{row.method} {row.path} {role}")
    for row in MATRIX
    for index, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("row", "column"), CASES)
def test_console_role_matrix(world: World, runtime: Runtime, row: Row, column: int) -> None:
    role = ROLES[column]
    cookie, csrf = world.sessions[role]
    client = world.client
    session = {"Cookie": f"{COOKIE}={cookie}"}
    path = row.path.format(
        ticket=world.ticket, customer=world.customer, agent=world.members["agent"].user_id
    )
    mark = _mark(runtime, world.ws)
    if row.method == "GET":
        response = client.get(path, headers=session, follow_redirects=False)
    else:
        data = (row.form() if row.form else {}) | {"csrf_token": csrf}
        response = client.post(
            path, data=data, headers={"Origin": ORIGIN, **session}, follow_redirects=False
        )
    expected = row.statuses[column]
    assert response.status_code == expected, response.text[:500]
    events = _events_after(runtime, world.ws, mark)
    if expected == 403:
        assert len(events) == 1, events
        assert events[0][1] == "denied"
    elif row.method == "GET" and expected == 303:
        # A staff page sends a customer to the portal (and the portal sends staff back)
        # before reading anything.
        assert events == []
    elif expected in (200, 303) and row.action:
        assert events == [(row.action, "success")]
    else:
        assert [e for e in events if e[1] == "success"] == []
