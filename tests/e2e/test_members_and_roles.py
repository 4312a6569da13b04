"""Workspace administration: members, custom roles, last-admin protection."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

MEMBERS = "/api/v1/members"
ROLES = "/api/v1/roles"


@pytest.fixture
def ws(factory: Factory) -> Workspace:
    return factory.workspace()


@pytest.fixture
def admin(factory: Factory, ws: Workspace) -> dict[str, str]:
    return factory.headers(ws.admin, ws)


@pytest.fixture
def new_email() -> str:
    return f"new.{uuid.uuid4().hex[:10]}@example.com"


def _add(client: TestClient, admin: dict[str, str], email: str, **fields: Any) -> Any:
    body = {"email": email, "name": "New Member", "role": "agent", **fields}
    return client.post(MEMBERS, json=body, headers=admin)


def test_add_a_new_member_with_a_password_who_can_then_sign_in(
    client: TestClient, ws: Workspace, admin: dict[str, str], new_email: str
) -> None:
    added = _add(client, admin, new_email, password="a-good-password")
    assert added.status_code == 201, added.text
    assert added.json()["invitation_token"] is None
    login = client.post(
        "/api/v1/auth/login",
        json={"email": new_email, "password": "a-good-password", "tenant": ws.slug},
    )
    assert login.status_code == 200
    listed = client.get(MEMBERS, headers=admin).json()["items"]
    assert {m["email"]: m["role"] for m in listed} == {
        ws.admin.email: "admin",
        new_email: "agent",
    }


def test_a_new_member_without_a_password_gets_a_one_time_invitation(
    client: TestClient, ws: Workspace, admin: dict[str, str], new_email: str
) -> None:
    token = _add(client, admin, new_email).json()["invitation_token"]
    assert token
    accept = "/api/v1/auth/invitations/accept"
    assert (
        client.post(accept, json={"token": token, "password": "chosen-password"}).status_code == 200
    )
    assert (
        client.post(accept, json={"token": token, "password": "other-password"}).status_code == 401
    )
    login = client.post(
        "/api/v1/auth/login",
        json={"email": new_email, "password": "chosen-password", "tenant": ws.slug},
    )
    assert login.status_code == 200


def test_an_existing_identity_joins_without_changing_its_password(
    client: TestClient, factory: Factory, admin: dict[str, str]
) -> None:
    other = factory.workspace()
    added = _add(client, admin, other.admin.email, password="attempted-takeover")
    assert added.status_code == 201
    assert added.json()["invitation_token"] is None
    login = client.post(
        "/api/v1/auth/login",
        json={"email": other.admin.email, "password": "attempted-takeover", "tenant": other.slug},
    )
    assert login.status_code == 401


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"password": "short"}, 422, "password"),
        ({"role": "wizard"}, 422, "role"),
        ({"email": "not-an-email"}, 422, "email"),
    ],
)
def test_bad_member_input(
    client: TestClient,
    admin: dict[str, str],
    new_email: str,
    fields: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = _add(client, admin, **{"email": new_email, **fields})
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"][-1] == field


def test_adding_a_member_twice_is_a_409(
    client: TestClient, admin: dict[str, str], new_email: str
) -> None:
    assert _add(client, admin, new_email, password="a-good-password").status_code == 201
    assert _add(client, admin, new_email).status_code == 409


def test_the_last_admin_cannot_be_demoted_or_removed(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    me = f"{MEMBERS}/{ws.admin.user_id}"
    demote = client.patch(me, json={"role": "agent"}, headers=admin)
    assert (demote.status_code, demote.json()["code"]) == (409, "last_admin")
    assert "last admin" in demote.json()["detail"]
    remove = client.delete(me, headers=admin)
    assert (remove.status_code, remove.json()["code"]) == (409, "last_admin")

    second = factory.member(ws, "admin")
    assert client.patch(me, json={"role": "agent"}, headers=admin).status_code == 200
    # The demotion counts at once: the old token no longer manages members.
    assert client.get(MEMBERS, headers=admin).status_code == 403
    second_headers = factory.headers(second, ws)
    last = client.delete(f"{MEMBERS}/{second.user_id}", headers=second_headers)
    assert last.status_code == 409


def test_removal_and_demotion_count_on_the_next_request(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    ticket = {"title": "t", "customer_email": "c@example.com"}
    assert client.post("/api/v1/tickets", json=ticket, headers=headers).status_code == 201
    assert (
        client.patch(
            f"{MEMBERS}/{agent.user_id}", json={"role": "viewer"}, headers=admin
        ).status_code
        == 200
    )
    assert client.post("/api/v1/tickets", json=ticket, headers=headers).status_code == 403
    assert client.delete(f"{MEMBERS}/{agent.user_id}", headers=admin).status_code == 204
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401
    assert client.delete(f"{MEMBERS}/{agent.user_id}", headers=admin).status_code == 404


def test_custom_role_lifecycle(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    created = client.post(
        ROLES,
        json={"name": "triage", "permissions": ["tickets.read", "tickets.update"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "triage",
        "builtin": False,
        "permissions": ["tickets.read", "tickets.update"],
        "ticket_scope": "all",
    }
    names = [(r["name"], r["builtin"]) for r in client.get(ROLES, headers=admin).json()["items"]]
    assert ("admin", True) in names
    assert ("triage", False) in names

    member = factory.member(ws, "triage")
    headers = factory.headers(member, ws)
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    assert client.get("/api/v1/customers", headers=headers).status_code == 403

    patched = client.patch(f"{ROLES}/triage", json={"permissions": ["tickets.read"]}, headers=admin)
    assert patched.json()["permissions"] == ["tickets.read"]
    in_use = client.delete(f"{ROLES}/triage", headers=admin)
    assert in_use.status_code == 409
    assert "1 member holds" in in_use.json()["detail"]
    client.patch(f"{MEMBERS}/{member.user_id}", json={"role": "viewer"}, headers=admin)
    assert client.delete(f"{ROLES}/triage", headers=admin).status_code == 204
    assert client.delete(f"{ROLES}/triage", headers=admin).status_code == 404


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"permissions": []}), ("DELETE", None)])
def test_builtin_roles_are_read_only(
    client: TestClient, admin: dict[str, str], method: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, f"{ROLES}/agent", json=body, headers=admin)
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"name": "x", "permissions": []}, 422, "name"),
        ({"name": "agent", "permissions": []}, 409, "exists"),
        ({"name": "bad role", "permissions": []}, 422, "name"),
        ({"name": "ok-role", "permissions": ["tickets.fly"]}, 422, "tickets.read"),
    ],
)
def test_custom_role_errors_say_what_is_wrong(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], status: int, needle: str
) -> None:
    response = client.post(ROLES, json=body, headers=admin)
    assert response.status_code == status
    assert needle in str(response.json()["detail"])


def test_an_assigned_scope_role_sees_only_assigned_tickets(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    client.post(
        ROLES,
        json={
            "name": "queue-agent",
            "permissions": ["tickets.read", "tickets.update"],
            "ticket_scope": "assigned",
        },
        headers=admin,
    )
    member = factory.member(ws, "queue-agent")
    headers = factory.headers(member, ws)
    mine = client.post(
        "/api/v1/tickets", json={"title": "mine", "customer_email": "a@example.com"}, headers=admin
    ).json()
    other = client.post(
        "/api/v1/tickets", json={"title": "other", "customer_email": "a@example.com"}, headers=admin
    ).json()
    assert (
        client.patch(
            f"/api/v1/tickets/{mine['id']}",
            json={"assignee_id": str(member.user_id)},
            headers=admin,
        ).status_code
        == 200
    )
    assert [t["id"] for t in client.get("/api/v1/tickets", headers=headers).json()["items"]] == [
        mine["id"]
    ]
    assert client.get(f"/api/v1/tickets/{other['id']}", headers=headers).status_code == 404
