"""Routing over HTTP: which member automatic assignment picks. Candidates hold tickets.receive
(and may work tickets); a ticket with a category goes first to a member with that skill, a
critical ticket first to a senior member, then the least loaded; a workspace may keep
auto-assignment to tickets of a minimum priority. Skills and seniority are set through
PATCH /members/{user_id}, under members.manage, and audited."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.models import AuditEvent
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _settings(client: TestClient, admin: dict[str, str], **settings: Any) -> None:
    _ok(client.put(f"{API}/settings", json={"auto_assign": True, **settings}, headers=admin))


def _route(client: TestClient, admin: dict[str, str], member: Member, **fields: Any) -> Any:
    return client.patch(f"{API}/members/{member.user_id}", json=fields, headers=admin)


def _create(client: TestClient, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"title": "Invoice wrong", "customer_email": "c@example.com", **fields}
    ticket: dict[str, Any] = _ok(client.post(f"{API}/tickets", json=body, headers=admin), 201)
    return ticket


def _give(client: TestClient, admin: dict[str, str], member: Member, count: int) -> None:
    """Make ``member`` hold ``count`` more working tickets."""
    for _ in range(count):
        ticket_id = _create(client, admin)["id"]
        body = {"assignee_id": str(member.user_id)}
        _ok(client.patch(f"{API}/tickets/{ticket_id}", json=body, headers=admin))


def _assignee(ticket: dict[str, Any]) -> uuid.UUID | None:
    return uuid.UUID(ticket["assignee_id"]) if ticket["assignee_id"] else None


def test_a_ticket_with_a_category_goes_first_to_a_member_with_that_skill(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    skilled, other = factory.member(ws, "agent"), factory.member(ws, "agent")
    _ok(_route(client, admin, skilled, skills=[" Billing ", "refunds"]))
    _give(client, admin, skilled, 2)  # busier than the other agent, and still first for billing
    _settings(client, admin)
    assert _assignee(_create(client, admin, category="billing")) == skilled.user_id
    assert _assignee(_create(client, admin, category="BILLING")) == skilled.user_id
    # Without the skill's category the least loaded is picked, as before.
    assert _assignee(_create(client, admin, category="technical")) == other.user_id
    assert _assignee(_create(client, admin)) == other.user_id


def test_a_critical_ticket_goes_first_to_a_senior_member(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    senior, junior = factory.member(ws, "agent"), factory.member(ws, "agent")
    _ok(_route(client, admin, senior, senior=True))
    _give(client, admin, senior, 3)
    _settings(client, admin)
    assert _assignee(_create(client, admin, priority="critical")) == senior.user_id
    # Seniority counts for critical tickets only.
    assert _assignee(_create(client, admin, priority="high")) == junior.user_id


def test_skill_comes_before_seniority_and_load_decides_between_equals(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    senior = factory.member(ws, "agent")
    skilled_busy, skilled_free = factory.member(ws, "agent"), factory.member(ws, "agent")
    _ok(_route(client, admin, senior, senior=True))
    for member in (skilled_busy, skilled_free):
        _ok(_route(client, admin, member, skills=["billing"]))
    _give(client, admin, skilled_busy, 1)
    _settings(client, admin)
    first = _create(client, admin, category="billing", priority="critical")
    assert _assignee(first) == skilled_free.user_id
    # Now both skilled agents hold one ticket; the longer-standing member breaks the tie.
    second = _create(client, admin, category="billing", priority="critical")
    assert _assignee(second) == skilled_busy.user_id
    # A senior skilled member beats a junior skilled one on a critical ticket of that category.
    _ok(_route(client, admin, skilled_free, senior=True))
    third = _create(client, admin, category="billing", priority="critical")
    assert _assignee(third) == skilled_free.user_id


@pytest.mark.parametrize(
    ("minimum", "assigned"),
    [
        ("low", {"low", "medium", "high", "critical"}),
        ("medium", {"medium", "high", "critical"}),
        ("high", {"high", "critical"}),
        ("critical", {"critical"}),
    ],
)
def test_auto_assignment_takes_only_tickets_of_the_minimum_priority_or_higher(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    minimum: str,
    assigned: set[str],
) -> None:
    agent = factory.member(ws, "agent")
    _settings(client, admin, auto_assign_min_priority=minimum)
    assert _ok(client.get(f"{API}/settings", headers=admin))["auto_assign_min_priority"] == minimum
    for priority in ("low", "medium", "high", "critical"):
        expected = agent.user_id if priority in assigned else None
        assert _assignee(_create(client, admin, priority=priority)) == expected, priority


def test_an_unknown_minimum_priority_is_a_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put(
        f"{API}/settings", json={"auto_assign_min_priority": "urgent"}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "auto_assign_min_priority"]


# Who automatic assignment may pick: roles holding tickets.receive that may also work tickets.
RECEIVERS = [
    # role                                                   picked
    ("agent",                                                True),
    ("admin",                                                False),
    ("viewer",                                               False),
    ("compliance",                                           False),
    ("customer",                                             False),
    (["tickets.read", "tickets.update", "tickets.receive"],  True),
    (["tickets.read", "tickets.update"],                     False),  # works, does not receive
    (["tickets.read", "tickets.receive"],                    False),  # could not work it
]  # fmt: skip


@pytest.mark.parametrize(("role", "picked"), RECEIVERS, ids=[str(role) for role, _ in RECEIVERS])
def test_only_members_whose_role_holds_tickets_receive_are_candidates(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    role: str | list[str],
    picked: bool,
) -> None:
    if isinstance(role, list):
        _ok(
            client.post(
                f"{API}/roles", json={"name": "custom", "permissions": role}, headers=admin
            ),
            201,
        )
        role = "custom"
    member = ws.admin if role == "admin" else factory.member(ws, role)
    _settings(client, admin)
    assert _assignee(_create(client, admin)) == (member.user_id if picked else None)


def _events(runtime: Runtime, ws: Workspace, action: str) -> list[AuditEvent]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
    return events


def test_skills_and_seniority_are_shown_changed_and_audited(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.member(ws, "agent")
    changed = _ok(_route(client, admin, agent, skills=["Billing", "billing", "VPN "], senior=True))
    assert (changed["skills"], changed["senior"], changed["role"]) == (
        ["billing", "vpn"],
        True,
        "agent",
    )
    listed = {m["user_id"]: m for m in _ok(client.get(f"{API}/members", headers=admin))["items"]}
    assert (listed[str(agent.user_id)]["skills"], listed[str(agent.user_id)]["senior"]) == (
        ["billing", "vpn"],
        True,
    )
    (event,) = _events(runtime, ws, "member.update")
    assert (event.target_type, event.target_id) == ("member", str(agent.user_id))
    assert event.changes == {
        "skills": {"before": [], "after": ["billing", "vpn"]},
        "senior": {"before": False, "after": True},
    }
    # A role change in the same request keeps its own action, with everything it changed.
    _ok(_route(client, admin, agent, role="viewer", skills=[]))
    (role_change,) = _events(runtime, ws, "member.role_change")
    assert role_change.changes == {
        "role": {"before": "agent", "after": "viewer"},
        "skills": {"before": ["billing", "vpn"], "after": []},
    }


def test_a_member_patch_must_change_something(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.member(ws, "agent")
    for body in ({}, {"role": None, "skills": None, "senior": None}):
        assert _route(client, admin, agent, **body).status_code == 422
    assert _route(client, admin, agent, skills=["x" * 65]).status_code == 422


def test_a_manager_may_set_their_own_skills_but_never_their_own_role(
    client: TestClient, ws: Workspace, admin: dict[str, str]
) -> None:
    assert _route(client, admin, ws.admin, skills=["billing"]).status_code == 200
    refused = _route(client, admin, ws.admin, role="admin", skills=["vpn"])
    assert refused.status_code == 403
    assert "own role" in refused.json()["detail"]
    shown = {m["user_id"]: m for m in _ok(client.get(f"{API}/members", headers=admin))["items"]}
    assert shown[str(ws.admin.user_id)]["skills"] == ["billing"]  # the refusal changed nothing


def test_routing_of_a_member_beyond_the_callers_ceiling_is_refused(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    body = {"name": "people", "permissions": ["members.manage", "tickets.read"]}
    _ok(client.post(f"{API}/roles", json=body, headers=admin), 201)
    manager = factory.headers(factory.member(ws, "people"), ws)
    other_admin = factory.member(ws, "admin")
    refused = client.patch(
        f"{API}/members/{other_admin.user_id}", json={"senior": True}, headers=manager
    )
    assert refused.status_code == 403
    assert "permission" in refused.json()["detail"]


def test_skills_cannot_be_set_on_another_workspaces_member(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    stranger = factory.member(factory.workspace(), "agent")
    response = _route(client, admin, stranger, skills=["billing"])
    assert (response.status_code, response.json()["code"]) == (404, "member_not_found")
