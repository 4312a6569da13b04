"""Privilege ceilings: a caller defines or assigns only roles whose permissions it holds (a
holder of members.manage may still appoint the built-in compliance role), nobody changes their
own role or edits the role they hold, and every refusal is a 403 that names what is missing."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from auth.permissions import BUILTIN_ROLES, Permission
from helpdesk.core.db import set_tenant_scope, transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

MEMBERS = "/api/v1/members"
ROLES = "/api/v1/roles"
ADMIN_PERMISSIONS = sorted(p.value for p in BUILTIN_ROLES["admin"])
EVERY_PERMISSION = sorted(p.value for p in Permission)


def _with_role(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str], perms: list[str]
) -> tuple[Member, dict[str, str], str]:
    """A member holding a custom role of exactly ``perms``, made by a workspace's own admin."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    with transaction(factory.runtime.sessions) as session:
        # Straight into the table: the admin could not define a role above their own.
        session.execute(
            text(
                "INSERT INTO public.custom_roles (tenant_id, name, permissions) VALUES (:t, :n, :p)"
            ),
            {"t": ws.id, "n": name, "p": perms},
        )
    member = factory.member(ws, name)
    return member, factory.headers(member, ws), name


def _refused(response: Any, *missing: str) -> None:
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "permission" in detail
    for name in missing:
        assert name in detail


# (caller's permissions, permissions of the role it defines, allowed?)
DEFINE = [
    (["roles.manage"], ["roles.manage"], True),
    (["roles.manage", "tickets.read"], ["tickets.read"], True),
    (["roles.manage"], [], True),
    (["roles.manage"], ["gdpr.erase"], False),
    (["roles.manage"], ["roles.manage", "members.manage"], False),
    (["roles.manage", "audit.read"], ["audit.read", "audit.export"], False),
]


@pytest.mark.parametrize(("holds", "grants", "allowed"), DEFINE)
def test_a_role_defined_holds_only_the_definers_permissions(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    holds: list[str],
    grants: list[str],
    allowed: bool,
) -> None:
    _, headers, _ = _with_role(client, factory, ws, admin, holds)
    created = client.post(ROLES, json={"name": "made", "permissions": grants}, headers=headers)
    if allowed:
        assert created.status_code == 201, created.text
    else:
        _refused(created, *sorted(set(grants) - set(holds)))
    # The same ceiling for a PATCH of a role the caller does not hold.
    target = client.post(ROLES, json={"name": "target", "permissions": []}, headers=admin)
    assert target.status_code == 201
    patched = client.patch(f"{ROLES}/target", json={"permissions": grants}, headers=headers)
    if allowed:
        assert patched.status_code == 200, patched.text
    else:
        _refused(patched, *sorted(set(grants) - set(holds)))


def test_roles_manage_alone_cannot_give_its_own_role_everything(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    _, headers, own = _with_role(client, factory, ws, admin, ["roles.manage"])
    for perms in (EVERY_PERMISSION, ["roles.manage"]):
        _refused(client.patch(f"{ROLES}/{own}", json={"permissions": perms}, headers=headers))
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["permissions"] == ["roles.manage"]


def test_an_admin_cannot_define_a_role_past_the_separation_of_duties(
    client: TestClient, admin: dict[str, str]
) -> None:
    for duty in ("gdpr.erase", "retention.run", "gdpr.export", "retention.manage"):
        body = {"name": f"r-{duty.replace('.', '-')}", "permissions": [*ADMIN_PERMISSIONS, duty]}
        _refused(client.post(ROLES, json=body, headers=admin), duty)
    body = {"name": "deputy", "permissions": ADMIN_PERMISSIONS}
    assert client.post(ROLES, json=body, headers=admin).status_code == 201


# (caller's permissions, role appointed, allowed?)
APPOINT = [
    (["members.manage"], "admin", False),
    (["members.manage"], "agent", False),
    (["members.manage"], "viewer", False),
    (["members.manage"], "customer", False),
    (["members.manage"], "compliance", True),  # appointing is not exercising its rights
    (["members.manage", "tickets.read", "comments.create", "customers.read"], "viewer", True),
    (ADMIN_PERMISSIONS, "admin", True),
    (ADMIN_PERMISSIONS, "agent", True),
]


@pytest.mark.parametrize(("holds", "role", "allowed"), APPOINT)
def test_a_member_is_added_or_moved_only_to_a_role_within_the_callers_permissions(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    holds: list[str],
    role: str,
    allowed: bool,
) -> None:
    _, headers, _ = _with_role(client, factory, ws, admin, holds)
    email = f"new.{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "name": "New", "role": role, "password": "a-good-password"}
    added = client.post(MEMBERS, json=body, headers=headers)
    if allowed:
        assert added.status_code == 201, added.text
    else:
        _refused(added, role)
    target = factory.member(ws, "compliance")
    moved = client.patch(f"{MEMBERS}/{target.user_id}", json={"role": role}, headers=headers)
    if allowed:
        assert moved.status_code == 200, moved.text
    else:
        _refused(moved, role)


def test_members_manage_alone_cannot_make_itself_admin(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    me, headers, own = _with_role(client, factory, ws, admin, ["members.manage"])
    for role in ("admin", "compliance", own):
        _refused(client.patch(f"{MEMBERS}/{me.user_id}", json={"role": role}, headers=headers))
    # Nor can it move someone who holds more than it does (it would demote the admins).
    _refused(
        client.patch(f"{MEMBERS}/{ws.admin.user_id}", json={"role": "compliance"}, headers=headers)
    )
    _refused(client.delete(f"{MEMBERS}/{ws.admin.user_id}", headers=headers), "tickets.delete")
    roles = {m["email"]: m["role"] for m in client.get(MEMBERS, headers=admin).json()["items"]}
    assert (roles[me.email], roles[ws.admin.email]) == (own, "admin")


def test_nobody_changes_their_own_role_not_even_an_admin(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    factory.member(ws, "admin")  # so "last admin" is not the reason
    for role in ("agent", "admin"):
        refused = client.patch(f"{MEMBERS}/{ws.admin.user_id}", json={"role": role}, headers=admin)
        _refused(refused)
        assert "own role" in refused.json()["detail"]


def test_every_appointment_and_refusal_is_audited(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    me, headers, _ = _with_role(client, factory, ws, admin, ["members.manage"])
    target = factory.member(ws, "viewer")
    assert (
        client.patch(f"{MEMBERS}/{target.user_id}", json={"role": "compliance"}, headers=admin)
    ).status_code == 200
    body = {"email": f"c.{uuid.uuid4().hex[:8]}@example.com", "name": "C", "role": "compliance"}
    assert client.post(MEMBERS, json=body, headers=headers).status_code == 201
    _refused(client.patch(f"{MEMBERS}/{target.user_id}", json={"role": "admin"}, headers=headers))
    with transaction(runtime.sessions) as session:
        set_tenant_scope(session, ws.schema_name, ws.role_name)
        rows = session.execute(
            text(
                "SELECT action, outcome, actor_id FROM audit_events"
                " WHERE action LIKE 'member.%' OR action = 'members.manage' ORDER BY id"
            )
        ).all()
    assert [(r.action, r.outcome, r.actor_id) for r in rows][-3:] == [
        ("member.role_change", "success", ws.admin.user_id),
        ("member.add", "success", me.user_id),
        ("members.manage", "denied", me.user_id),
    ]
