"""Workspace administration: members, custom roles, last-admin protection."""

import threading
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

MEMBERS = "/api/v1/members"
ROLES = "/api/v1/roles"


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


def _roles(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    return {m["email"]: m["role"] for m in client.get(MEMBERS, headers=headers).json()["items"]}


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"role": "agent"}),
        ("PATCH", {"role": "viewer"}),
        ("PATCH", {"role": "custom-admin"}),  # holds members.manage, but is not "admin"
        ("DELETE", None),
    ],
)
def test_the_last_admin_is_refused_with_a_409_that_says_so(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    method: str,
    body: dict[str, str] | None,
) -> None:
    client.post(
        ROLES,
        json={"name": "custom-admin", "permissions": ["members.manage", "roles.manage"]},
        headers=admin,
    )
    # Nobody changes their own role: a deputy holding every admin permission (but not the
    # admin role) tries the demotions; the last admin tries to leave.
    every = client.get(f"{ROLES}?limit=1", headers=admin).json()["items"][0]["permissions"]
    assert client.post(
        ROLES, json={"name": "deputy", "permissions": every}, headers=admin
    ).is_success
    caller = factory.headers(factory.member(ws, "deputy"), ws) if method == "PATCH" else admin
    response = client.request(method, f"{MEMBERS}/{ws.admin.user_id}", json=body, headers=caller)
    assert (response.status_code, response.json()["code"]) == (409, "last_admin")
    assert "last admin" in response.json()["detail"]
    assert _roles(client, admin)[ws.admin.email] == "admin"


def test_an_admin_may_be_moved_down_once_another_admin_exists(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    me = f"{MEMBERS}/{ws.admin.user_id}"
    second = factory.member(ws, "admin")
    second_headers = factory.headers(second, ws)
    # Not by themselves (nobody changes their own role), by the other admin.
    assert client.patch(me, json={"role": "agent"}, headers=second_headers).status_code == 200
    # The demotion counts at once: the old token no longer manages members.
    assert client.get(MEMBERS, headers=admin).status_code == 403
    assert _roles(client, second_headers)[ws.admin.email] == "agent"
    # Now the second admin is the last one, and is protected in turn.
    last = client.delete(f"{MEMBERS}/{second.user_id}", headers=second_headers)
    assert (last.status_code, last.json()["code"]) == (409, "last_admin")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    second = factory.member(ws, "admin")
    moves = [
        (admin, second.user_id),  # the first admin demotes the second
        (factory.headers(second, ws), ws.admin.user_id),  # and the second the first
    ]
    statuses: list[int] = []

    def demote(headers: dict[str, str], target: uuid.UUID) -> None:
        response = client.patch(f"{MEMBERS}/{target}", json={"role": "agent"}, headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=demote, args=move) for move in moves]
    # Holding the workspace's membership rows makes both requests queue on them after their
    # permission check, so the two really overlap instead of merely running close together.
    with transaction(runtime.sessions) as holder:
        holder.execute(
            text("SELECT 1 FROM public.members WHERE tenant_id = :t FOR UPDATE"), {"t": ws.id}
        )
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(500):  # bounded: a broken build fails below instead of hanging
            # pg_locks, unlike pg_stat_activity, shows other sessions to an unprivileged role.
            waiting = holder.execute(
                text(
                    "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a"
                    " ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar_one()
            if waiting == len(threads):
                break
            time.sleep(0.02)
    for thread in threads:
        thread.join()
    assert waiting == len(threads)
    # One demotion wins; the other finds its target is now the last admin.
    assert sorted(statuses) == [200, 409]
    with transaction(runtime.sessions) as session:
        admins = session.execute(
            text("SELECT count(*) FROM public.members WHERE tenant_id = :t AND role = 'admin'"),
            {"t": ws.id},
        ).scalar_one()
    assert admins == 1


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
    ticket = client.post(
        "/api/v1/tickets", json={"title": "t", "customer_email": "c@example.com"}, headers=admin
    ).json()
    edit = f"/api/v1/tickets/{ticket['id']}"
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    assert client.patch(edit, json={"title": "triaged"}, headers=headers).status_code == 200
    assert client.get("/api/v1/customers", headers=headers).status_code == 403

    patched = client.patch(f"{ROLES}/triage", json={"permissions": ["tickets.read"]}, headers=admin)
    assert patched.json()["permissions"] == ["tickets.read"]
    # The narrower role counts on the holder's next request, with the token they already have.
    narrowed = client.patch(edit, json={"title": "again"}, headers=headers)
    assert narrowed.status_code == 403
    assert "tickets.update" in narrowed.json()["detail"]
    in_use = client.delete(f"{ROLES}/triage", headers=admin)
    assert (in_use.status_code, in_use.json()["code"]) == (409, "role_in_use")
    assert "1 member holds" in in_use.json()["detail"]
    client.patch(f"{MEMBERS}/{member.user_id}", json={"role": "viewer"}, headers=admin)
    assert client.delete(f"{ROLES}/triage", headers=admin).status_code == 204
    assert client.delete(f"{ROLES}/triage", headers=admin).status_code == 404
    assert "triage" not in [r["name"] for r in client.get(ROLES, headers=admin).json()["items"]]


@pytest.mark.parametrize(("holders", "phrase"), [(1, "1 member holds"), (3, "3 members hold")])
def test_deleting_a_role_in_use_names_how_many_members_hold_it(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    holders: int,
    phrase: str,
) -> None:
    created = client.post(ROLES, json={"name": "nightshift", "permissions": []}, headers=admin)
    assert created.status_code == 201, created.text
    for _ in range(holders):
        factory.member(ws, "nightshift")
    factory.member(ws, "agent")  # holders of other roles are not counted
    response = client.delete(f"{ROLES}/nightshift", headers=admin)
    assert (response.status_code, response.json()["code"]) == (409, "role_in_use")
    assert phrase in response.json()["detail"]


@pytest.mark.parametrize("role", ["admin", "agent", "viewer", "compliance", "customer"])
@pytest.mark.parametrize(("method", "body"), [("PATCH", {"permissions": []}), ("DELETE", None)])
def test_builtin_roles_are_read_only(
    client: TestClient,
    admin: dict[str, str],
    role: str,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    before = client.get(ROLES, headers=admin).json()["items"]
    response = client.request(method, f"{ROLES}/{role}", json=body, headers=admin)
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]
    assert client.get(ROLES, headers=admin).json()["items"] == before


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"name": "x", "permissions": []}, 422, "name"),
        ({"name": "agent", "permissions": []}, 409, "exists"),
        ({"name": "bad role", "permissions": []}, 422, "name"),
    ],
)
def test_custom_role_errors_say_what_is_wrong(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], status: int, needle: str
) -> None:
    response = client.post(ROLES, json=body, headers=admin)
    assert response.status_code == status
    assert needle in str(response.json()["detail"])


# API.md's permission names (and our one addition), written out: the 422 must offer a caller
# every one of them.
DOCUMENTED_PERMISSIONS = [
    "tickets.read", "tickets.create", "tickets.update", "tickets.assign", "tickets.delete",
    "comments.create", "customers.read", "customers.write",
    "members.manage", "roles.manage", "webhooks.manage",
    "audit.read", "audit.export", "audit.verify", "gdpr.export", "gdpr.erase",
    "retention.read", "retention.manage", "retention.run",
    "settings.manage",  # ours, beyond API.md's table (docs/DECISIONS.md)
]  # fmt: skip


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_an_unknown_permission_is_a_422_that_lists_the_valid_ones(
    client: TestClient, admin: dict[str, str], method: str
) -> None:
    assert (
        client.post(ROLES, json={"name": "ok-role", "permissions": []}, headers=admin).status_code
        == 201
    )
    body = {"permissions": ["tickets.read", "tickets.fly", "admin"]}
    if method == "POST":
        response = client.post(ROLES, json={"name": "new-role", **body}, headers=admin)
    else:
        response = client.patch(f"{ROLES}/ok-role", json=body, headers=admin)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "permissions"]
    message = error["msg"]
    assert "tickets.fly" in message
    assert "admin" in message
    missing = [name for name in DOCUMENTED_PERMISSIONS if name not in message]
    assert missing == []
    # Nothing was saved on the way to the refusal.
    roles = {r["name"]: r for r in client.get(ROLES, headers=admin).json()["items"]}
    assert "new-role" not in roles
    assert roles["ok-role"]["permissions"] == []


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
