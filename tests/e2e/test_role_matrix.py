"""The role matrix: every API route by every kind of caller, with the status API.md implies.

The expected table below is written from API.md ("Built-in roles", the route tables and the
error conventions), not derived from ``auth.permissions``: removing from a built-in role in the
code any permission that some route needs makes a cell here fail. Allowed is the route's 2xx; a
caller the role does not allow gets 403 naming the missing "permission"; a token from another
workspace cannot reach this workspace's ids (404) and sees its own, empty, collections (2xx); no
token is a 401.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from auth.models import CustomRole
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import PASSWORD, Factory, Member, Workspace, unique_slug
from tests.support.routes import api_routes

pytestmark = pytest.mark.e2e

API = "/api/v1"

# The callers, in the order of the table's columns.
# - admin, agent, viewer, compliance, customer: members of the workspace with that built-in role.
# - custom: a member holding CUSTOM_ROLE, a custom role of this workspace.
# - operator: a platform operator; its token names no workspace, so tenant routes are a 403.
# - anonymous: no Authorization header at all.
# - other_ws: the admin of a brand-new workspace of its own (new for each case, so nothing another
#   case wrote there can share an id with this workspace's objects).
CALLERS = (
    "admin", "agent", "viewer", "compliance", "customer", "custom", "operator", "anonymous",
    "other_ws",
)  # fmt: skip
# The world and each case's fresh objects are built by a member of this custom role, so that
# the setup never depends on a built-in role's permissions: dropping one from the code fails the
# table cells that need it, not the fixture. (tickets.update also makes it a valid assignee.)
# It holds what the custom role it defines grants: a caller grants only permissions it holds.
BUILDER_ROLE = "matrix-builder"
BUILDER_PERMISSIONS = [
    "tickets.read",
    "customers.read",
    "tickets.create",
    "tickets.update",
    "comments.create",
    "customers.write",
    "members.manage",
    "roles.manage",
    "webhooks.manage",
]
CUSTOM_ROLE_NAME = "ticket-reader"
CUSTOM_ROLE = {
    "name": CUSTOM_ROLE_NAME,
    "permissions": ["tickets.read", "customers.read"],
    "ticket_scope": "all",
}

# One row per route: "METHOD path-template [variant]" -> one status per caller column.
# A variant row exercises a second rule of the same route that has a permission of its own.
# The customer column: the workspace's shared ticket was requested by the customer member, so
# a customer's "own" reach includes it (a ticket requested by someone else would be a 404).
EXPECTED: dict[str, tuple[int, ...]] = {
    #                                              adm  agt  vwr  cmp  cst  cus  opr  anon oth
    # Signed-in callers of any kind.
    "POST /auth/logout":                           (204, 204, 204, 204, 204, 204, 204, 401, 204),
    "GET /auth/me":                                (200, 200, 200, 200, 200, 200, 200, 401, 200),
    # Platform: operators only; managing workspaces is not any workspace member's business.
    "POST /platform/tenants":                      (403, 403, 403, 403, 403, 403, 201, 401, 403),
    "GET /platform/tenants":                       (403, 403, 403, 403, 403, 403, 200, 401, 403),
    "GET /platform/tenants/{slug}":                (403, 403, 403, 403, 403, 403, 200, 401, 403),
    "PATCH /platform/tenants/{slug}":              (403, 403, 403, 403, 403, 403, 200, 401, 403),
    "DELETE /platform/tenants/{slug}":             (403, 403, 403, 403, 403, 403, 202, 401, 403),
    # Tickets: tickets.read / create / update / delete; "assign" sets assignee_id (tickets.assign).
    "POST /tickets":                               (201, 201, 403, 403, 201, 403, 403, 401, 201),
    "GET /tickets":                                (200, 200, 200, 403, 200, 200, 403, 401, 200),
    "GET /tickets/mine":                           (200, 200, 200, 403, 200, 200, 403, 401, 200),
    "GET /tickets/{ticket_id}":                    (200, 200, 200, 403, 200, 200, 403, 401, 404),
    "PATCH /tickets/{ticket_id}":                  (200, 200, 403, 403, 403, 403, 403, 401, 404),
    "PATCH /tickets/{ticket_id} assign":           (200, 200, 403, 403, 403, 403, 403, 401, 404),
    "DELETE /tickets/{ticket_id}":                 (204, 403, 403, 403, 403, 403, 403, 401, 404),
    # Comments: a viewer writes internal notes only; a customer replies publicly, on own tickets.
    "POST /tickets/{ticket_id}/comments public":   (201, 201, 403, 403, 201, 403, 403, 401, 404),
    "POST /tickets/{ticket_id}/comments internal": (201, 201, 201, 403, 403, 403, 403, 401, 404),
    "GET /tickets/{ticket_id}/comments":           (200, 200, 200, 403, 200, 200, 403, 401, 404),
    # Customers: customers.read (personal data) and customers.write.
    "GET /customers":                              (200, 200, 200, 200, 403, 200, 403, 401, 200),
    "GET /customers/{customer_id}":                (200, 200, 200, 200, 403, 200, 403, 401, 404),
    "POST /customers":                             (201, 201, 403, 403, 403, 403, 403, 401, 201),
    "PATCH /customers/{customer_id}":              (200, 200, 403, 403, 403, 403, 403, 401, 404),
    # Members, roles, webhooks: members.manage, roles.manage, webhooks.manage (admin only).
    "GET /members":                                (200, 403, 403, 403, 403, 403, 403, 401, 200),
    "POST /members":                               (201, 403, 403, 403, 403, 403, 403, 401, 201),
    "PATCH /members/{user_id}":                    (200, 403, 403, 403, 403, 403, 403, 401, 404),
    "DELETE /members/{user_id}":                   (204, 403, 403, 403, 403, 403, 403, 401, 404),
    "GET /roles":                                  (200, 403, 403, 403, 403, 403, 403, 401, 200),
    "POST /roles":                                 (201, 403, 403, 403, 403, 403, 403, 401, 201),
    "PATCH /roles/{name}":                         (200, 403, 403, 403, 403, 403, 403, 401, 404),
    "DELETE /roles/{name}":                        (204, 403, 403, 403, 403, 403, 403, 401, 404),
    "GET /webhooks":                               (200, 403, 403, 403, 403, 403, 403, 401, 200),
    "POST /webhooks":                              (201, 403, 403, 403, 403, 403, 403, 401, 201),
    "DELETE /webhooks/{webhook_id}":               (204, 403, 403, 403, 403, 403, 403, 401, 404),
    # Audit: audit.read and audit.verify (admin and compliance).
    "GET /audit/events":                           (200, 403, 403, 200, 403, 403, 403, 401, 200),
    "GET /audit/verify":                           (200, 403, 403, 200, 403, 403, 403, 401, 200),
    "GET /audit/export":                           (200, 403, 403, 200, 403, 403, 403, 401, 200),
    # GDPR: gdpr.export and gdpr.erase (compliance only).
    "GET /gdpr/subjects/{email}/export":           (403, 403, 403, 200, 403, 403, 403, 401, 403),
    "POST /gdpr/subjects/{email}/erase":           (403, 403, 403, 200, 403, 403, 403, 401, 403),
    # Retention: admin may read the policy; only compliance changes it or runs a purge.
    "GET /retention/policy":                       (200, 403, 403, 200, 403, 403, 403, 401, 200),
    "PUT /retention/policy":                       (403, 403, 403, 200, 403, 403, 403, 401, 403),
    "POST /retention/run":                         (403, 403, 403, 200, 403, 403, 403, 401, 403),
    # Workspace settings: settings.manage, ours beyond API.md's table (admin only).
    "GET /settings":                               (200, 403, 403, 403, 403, 403, 403, 401, 200),
    "PUT /settings":                               (200, 403, 403, 403, 403, 403, 403, 401, 200),
}  # fmt: skip

# Public routes (API.md: *public*) answer a caller without a token; they are not in the matrix.
PUBLIC: dict[str, int] = {
    "POST /auth/login": 200,
    "POST /auth/refresh": 200,
    "POST /auth/invitations/accept": 200,
}


def _route(key: str) -> tuple[str, str]:
    method, path, *_variant = key.split()
    return method, path


@dataclass(frozen=True)
class World:
    """One workspace with a member of each role and one of everything, shared by the cases."""

    ws: Workspace
    members: dict[str, Member]  # by caller name, for the workspace's members
    builder: Member  # holds BUILDER_ROLE
    operator: Member
    ticket_id: int  # requested by members["customer"]
    customer_id: int  # a customer record of its own, not the customer member's


@dataclass(frozen=True)
class Call:
    path: str  # below API
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Setup:
    """Builds a case's request; what the case may change or remove, it creates fresh."""

    api: TestClient
    factory: Factory
    world: World

    def as_builder(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = self.factory.headers(self.world.builder, self.world.ws)
        response = self.api.request(method, API + path, json=body, headers=headers)
        assert response.is_success, response.text
        created: dict[str, Any] = response.json()
        return created

    def fresh_ticket(self) -> int:
        customer = self.world.members["customer"].email
        ticket = self.as_builder("POST", "/tickets", {"title": "Fresh", "customer_email": customer})
        return int(ticket["id"])

    def fresh_member(self) -> uuid.UUID:
        return self.factory.member(self.world.ws, "agent").user_id

    def fresh_role(self) -> str:
        role = self.as_builder("POST", "/roles", {"name": _unique("r"), "permissions": []})
        return str(role["name"])

    def fresh_webhook(self) -> int:
        webhook = self.as_builder("POST", "/webhooks", WEBHOOK)
        return int(webhook["id"])

    def fresh_workspace(self) -> str:
        return self.factory.workspace().slug

    def login(self) -> dict[str, str]:
        member = self.factory.member(self.world.ws, "agent")
        return {"email": member.email, "password": PASSWORD, "tenant": self.world.ws.slug}

    def refresh_token(self) -> str:
        response = self.api.post(f"{API}/auth/login", json=self.login())
        assert response.status_code == 200, response.text
        return str(response.json()["refresh_token"])

    def invitation(self) -> str:
        # compliance: the one role a holder of members.manage appoints without holding its rights.
        body = {
            "email": f"{_unique('invited')}@example.com",
            "name": "Invited",
            "role": "compliance",
        }
        return str(self.as_builder("POST", "/members", body)["invitation_token"])


WEBHOOK = {"url": "https://hooks.example.com/helpdesk", "events": ["ticket.created"], "secret": "s"}


def ticket(ticket_id: int) -> str:
    return f"/tickets/{ticket_id}"


# How to call each row's route so that a caller who is allowed gets its 2xx.
REQUESTS: dict[str, Callable[[Setup], Call]] = {
    # An unknown refresh token revokes nothing, so every caller's logout is harmless to the rest.
    "POST /auth/logout": lambda s: Call("/auth/logout", {"refresh_token": "no-such-token"}),
    "GET /auth/me": lambda s: Call("/auth/me"),
    "POST /platform/tenants": lambda s: Call(
        "/platform/tenants",
        {
            "slug": unique_slug(),
            "name": "Matrix workspace",
            "admin_email": f"{_unique('admin')}@example.com",
            "admin_password": PASSWORD,
        },
    ),
    "GET /platform/tenants": lambda s: Call("/platform/tenants"),
    "GET /platform/tenants/{slug}": lambda s: Call(f"/platform/tenants/{s.world.ws.slug}"),
    "PATCH /platform/tenants/{slug}": lambda s: Call(
        f"/platform/tenants/{s.fresh_workspace()}", {"name": "Renamed workspace"}
    ),
    "DELETE /platform/tenants/{slug}": lambda s: Call(f"/platform/tenants/{s.fresh_workspace()}"),
    # A customer's ticket is theirs whatever customer_email says; staff must name the customer.
    "POST /tickets": lambda s: Call(
        "/tickets", {"title": "Printer on fire", "customer_email": "pat@example.com"}
    ),
    "GET /tickets": lambda s: Call("/tickets"),
    "GET /tickets/mine": lambda s: Call("/tickets/mine"),
    "GET /tickets/{ticket_id}": lambda s: Call(ticket(s.world.ticket_id)),
    "PATCH /tickets/{ticket_id}": lambda s: Call(
        ticket(s.world.ticket_id), {"title": "Printer on fire (edited)"}
    ),
    "PATCH /tickets/{ticket_id} assign": lambda s: Call(
        ticket(s.world.ticket_id), {"assignee_id": str(s.world.builder.user_id)}
    ),
    "DELETE /tickets/{ticket_id}": lambda s: Call(ticket(s.fresh_ticket())),
    "POST /tickets/{ticket_id}/comments public": lambda s: Call(
        ticket(s.world.ticket_id) + "/comments", {"body": "We are on it.", "public": True}
    ),
    "POST /tickets/{ticket_id}/comments internal": lambda s: Call(
        ticket(s.world.ticket_id) + "/comments", {"body": "Toner again?", "public": False}
    ),
    "GET /tickets/{ticket_id}/comments": lambda s: Call(ticket(s.world.ticket_id) + "/comments"),
    "GET /customers": lambda s: Call("/customers"),
    "GET /customers/{customer_id}": lambda s: Call(f"/customers/{s.world.customer_id}"),
    "POST /customers": lambda s: Call(
        "/customers", {"email": f"{_unique('cust')}@example.com", "name": "New Customer"}
    ),
    "PATCH /customers/{customer_id}": lambda s: Call(
        f"/customers/{s.world.customer_id}", {"company": "Acme Ltd"}
    ),
    "GET /members": lambda s: Call("/members"),
    "POST /members": lambda s: Call(
        "/members",
        {
            "email": f"{_unique('member')}@example.com",
            "name": "New Member",
            "role": "agent",
            "password": "a-good-password",
        },
    ),
    "PATCH /members/{user_id}": lambda s: Call(f"/members/{s.fresh_member()}", {"role": "viewer"}),
    "DELETE /members/{user_id}": lambda s: Call(f"/members/{s.fresh_member()}"),
    "GET /roles": lambda s: Call("/roles"),
    "POST /roles": lambda s: Call(
        "/roles", {"name": _unique("r"), "permissions": ["tickets.read"]}
    ),
    "PATCH /roles/{name}": lambda s: Call(
        f"/roles/{s.fresh_role()}", {"permissions": ["tickets.read"]}
    ),
    "DELETE /roles/{name}": lambda s: Call(f"/roles/{s.fresh_role()}"),
    "GET /webhooks": lambda s: Call("/webhooks"),
    "POST /webhooks": lambda s: Call("/webhooks", WEBHOOK),
    "DELETE /webhooks/{webhook_id}": lambda s: Call(f"/webhooks/{s.fresh_webhook()}"),
    "GET /audit/events": lambda s: Call("/audit/events", params={"limit": "5"}),
    "GET /audit/verify": lambda s: Call("/audit/verify"),
    "GET /audit/export": lambda s: Call("/audit/export", params={"format": "csv"}),
    "GET /gdpr/subjects/{email}/export": lambda s: Call(
        f"/gdpr/subjects/{s.world.members['customer'].email}/export"
    ),
    # A subject of their own for each case: erasing the shared customer would change the world.
    "POST /gdpr/subjects/{email}/erase": lambda s: Call(
        f"/gdpr/subjects/{_unique('subject')}@example.com/erase"
    ),
    "GET /retention/policy": lambda s: Call("/retention/policy"),
    # Keeping everything is the policy a workspace starts with: no case purges another's data.
    "PUT /retention/policy": lambda s: Call(
        "/retention/policy",
        {"closed_ticket_days": None, "audit_event_days": None, "legal_hold": False},
    ),
    "POST /retention/run": lambda s: Call("/retention/run", params={"dry_run": "true"}),
    "GET /settings": lambda s: Call("/settings"),
    # The product default: no case turns on automation the others would notice.
    "PUT /settings": lambda s: Call("/settings", {"auto_close_days": 7}),
}


PUBLIC_REQUESTS: dict[str, Callable[[Setup], Call]] = {
    "POST /auth/login": lambda s: Call("/auth/login", s.login()),
    "POST /auth/refresh": lambda s: Call("/auth/refresh", {"refresh_token": s.refresh_token()}),
    "POST /auth/invitations/accept": lambda s: Call(
        "/auth/invitations/accept", {"token": s.invitation(), "password": "chosen-password"}
    ),
}


@pytest.fixture(scope="module")
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def world(api: TestClient, runtime: Runtime) -> World:
    factory = Factory(runtime)
    ws = factory.workspace()
    with transaction(runtime.sessions) as session:
        session.add(CustomRole(tenant_id=ws.id, name=BUILDER_ROLE, permissions=BUILDER_PERMISSIONS))
    builder = factory.member(ws, BUILDER_ROLE)
    headers = factory.headers(builder, ws)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(API + path, json=body, headers=headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    post("/roles", CUSTOM_ROLE)
    members = {"admin": ws.admin, "custom": factory.member(ws, CUSTOM_ROLE_NAME)}
    for role in ("agent", "viewer", "compliance", "customer"):
        members[role] = factory.member(ws, role)
    ticket_id = post(
        "/tickets", {"title": "Printer on fire", "customer_email": members["customer"].email}
    )["id"]
    post(f"/tickets/{ticket_id}/comments", {"body": "Have you tried turning it off?"})
    customer = post("/customers", {"email": "sam@example.com", "name": "Sam"})
    return World(ws, members, builder, factory.operator(), ticket_id, customer["id"])


def _headers(caller: str, world: World, factory: Factory) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "operator":
        return factory.headers(world.operator, None)
    if caller == "other_ws":
        other = factory.workspace()
        return factory.headers(other.admin, other)
    return factory.headers(world.members[caller], world.ws)


def test_the_table_has_one_row_per_route_and_nothing_else(app: FastAPI) -> None:
    served = set(api_routes(app))
    tabled = {_route(key) for key in EXPECTED} | {_route(key) for key in PUBLIC}
    assert {"missing from the table": served - tabled, "not served": tabled - served} == {
        "missing from the table": set(),
        "not served": set(),
    }
    assert not {_route(key) for key in EXPECTED} & {_route(key) for key in PUBLIC}
    assert set(REQUESTS) == set(EXPECTED)
    assert set(PUBLIC_REQUESTS) == set(PUBLIC)
    assert {len(row) for row in EXPECTED.values()} == {len(CALLERS)}


@pytest.mark.parametrize(
    ("route", "caller"),
    [
        pytest.param(route, caller, id=f"{route} as {caller}")
        for route in EXPECTED
        for caller in CALLERS
    ],
)
def test_role_matrix(
    api: TestClient, world: World, factory: Factory, route: str, caller: str
) -> None:
    expected = EXPECTED[route][CALLERS.index(caller)]
    method, _ = _route(route)
    call = REQUESTS[route](Setup(api, factory, world))
    response = api.request(
        method,
        API + call.path,
        json=call.json,
        params=call.params,
        headers=_headers(caller, world, factory),
    )
    assert response.status_code == expected, f"{route} as {caller}: {response.text}"
    if expected == 403:
        assert "permission" in response.json()["detail"]
    if expected == 404:
        # The route was reached and the object is not in the caller's workspace (an unknown path
        # would be the generic "not_found").
        assert response.json()["code"].endswith("_not_found")


@pytest.mark.parametrize("route", list(PUBLIC))
def test_a_public_route_serves_a_caller_without_a_token(
    api: TestClient, world: World, factory: Factory, route: str
) -> None:
    method, _ = _route(route)
    call = PUBLIC_REQUESTS[route](Setup(api, factory, world))
    response = api.request(method, API + call.path, json=call.json, params=call.params)
    assert response.status_code == PUBLIC[route], f"{route}: {response.text}"
