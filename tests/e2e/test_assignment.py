"""Assignment over HTTP: automatic assignment to the least-loaded active agent when the
workspace turns it on, and explicit assignment only to members who may work tickets."""

import uuid
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from helpdesk.sla.models import WorkspaceSettings
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

TICKETS = "/api/v1/tickets"


def auto_assign(runtime: Runtime, ws: Workspace, on: bool = True) -> None:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.merge(WorkspaceSettings(id=1, auto_assign=on))


def remove(runtime: Runtime, ws: Workspace, member: Member) -> None:
    with transaction(runtime.sessions) as session:
        session.execute(
            text("DELETE FROM public.members WHERE tenant_id = :t AND user_id = :u"),
            {"t": ws.id, "u": member.user_id},
        )


def _create(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    body = {"title": "VPN drops", "customer_email": "c@example.com"}
    response = client.post(TICKETS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def _assign(client: TestClient, headers: dict[str, str], ticket_id: int, assignee: object) -> Any:
    return client.patch(
        f"{TICKETS}/{ticket_id}",
        json={"assignee_id": None if assignee is None else str(assignee)},
        headers=headers,
    )


def _loads(tickets: list[dict[str, Any]]) -> Counter[str | None]:
    return Counter(t["assignee_id"] for t in tickets)


def test_new_tickets_are_shared_evenly_among_the_agents(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    agents = [factory.member(ws, "agent") for _ in range(3)]
    auto_assign(runtime, ws)
    tickets = [_create(client, admin) for _ in range(9)]
    assert _loads(tickets) == {str(a.user_id): 3 for a in agents}
    # Each round of three reaches every agent once: no agent gets two before another gets one.
    for start in range(0, 9, 3):
        assert len(_loads(tickets[start : start + 3])) == 3


def test_only_current_agents_are_picked(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    active = [factory.member(ws, "agent") for _ in range(2)]
    remove(runtime, ws, factory.member(ws, "agent"))
    for role in ("viewer", "compliance", "customer"):
        factory.member(ws, role)
    auto_assign(runtime, ws)
    tickets = [_create(client, admin) for _ in range(6)]
    assert _loads(tickets) == {str(a.user_id): 3 for a in active}


def test_the_agent_with_the_fewest_working_tickets_is_picked(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    busy, free = factory.member(ws, "agent"), factory.member(ws, "agent")
    held = [_create(client, admin)["id"] for _ in range(2)]
    for ticket_id in held:
        assert _assign(client, admin, ticket_id, busy.user_id).status_code == 200
    auto_assign(runtime, ws)
    assert [_create(client, admin)["assignee_id"] for _ in range(2)] == [str(free.user_id)] * 2
    # Resolved and closed tickets are finished work: they no longer count against an agent.
    for ticket_id, status in zip(held, ("resolved", "closed"), strict=True):
        response = client.patch(f"{TICKETS}/{ticket_id}", json={"status": status}, headers=admin)
        assert response.status_code == 200, response.text
    assert _create(client, admin)["assignee_id"] == str(busy.user_id)


def test_without_auto_assign_new_tickets_stay_unassigned(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    factory.member(ws, "agent")
    assert _create(client, admin)["assignee_id"] is None
    auto_assign(runtime, ws, on=False)
    assert _create(client, admin)["assignee_id"] is None


def test_with_no_agent_to_pick_a_new_ticket_stays_unassigned(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    auto_assign(runtime, ws)
    assert _create(client, admin)["assignee_id"] is None


def _target(factory: Factory, runtime: Runtime, ws: Workspace, who: str) -> uuid.UUID:
    """The user id to assign: a member with that role, or one of the special cases."""
    if who == "admin":
        return ws.admin.user_id
    if who == "nobody":
        return uuid.uuid4()
    if who == "other workspace's agent":
        return factory.member(factory.workspace(), "agent").user_id
    if who == "removed agent":
        member = factory.member(ws, "agent")
        remove(runtime, ws, member)
        return member.user_id
    return factory.member(ws, who).user_id


# Who a ticket may be assigned to: members whose role may work tickets (tickets.update).
EXPLICIT = [
    # assignee                   status
    ("agent",                    200),
    ("admin",                    200),
    ("triage",                   200),  # a custom role with tickets.update
    ("viewer",                   422),
    ("compliance",               422),
    ("customer",                 422),
    ("removed agent",            422),
    ("other workspace's agent",  422),
    ("nobody",                   422),
]  # fmt: skip


@pytest.mark.parametrize(("who", "status"), EXPLICIT)
def test_explicit_assignment_only_to_a_member_who_may_work_tickets(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    admin: dict[str, str],
    who: str,
    status: int,
) -> None:
    created = client.post(
        "/api/v1/roles",
        json={"name": "triage", "permissions": ["tickets.read", "tickets.update"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assignee = _target(factory, runtime, ws, who)
    ticket_id = _create(client, admin)["id"]
    response = _assign(client, admin, ticket_id, assignee)
    assert response.status_code == status, response.text
    shown = client.get(f"{TICKETS}/{ticket_id}", headers=admin).json()["assignee_id"]
    if status == 200:
        assert response.json()["assignee_id"] == shown == str(assignee)
    else:
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "assignee_id"]]
        assert shown is None


def test_an_agent_may_assign_to_a_colleague_and_unassign(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    agent, colleague = factory.member(ws, "agent"), factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    ticket_id = _create(client, admin)["id"]
    assigned = _assign(client, headers, ticket_id, colleague.user_id)
    assert (assigned.status_code, assigned.json()["assignee_id"]) == (200, str(colleague.user_id))
    cleared = _assign(client, headers, ticket_id, None)
    assert (cleared.status_code, cleared.json()["assignee_id"]) == (200, None)


def test_assigning_needs_tickets_assign_beyond_tickets_update(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/roles",
        json={"name": "editor", "permissions": ["tickets.read", "tickets.update"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    editor = factory.member(ws, "editor")
    headers = factory.headers(editor, ws)
    ticket_id = _create(client, admin)["id"]
    edited = client.patch(f"{TICKETS}/{ticket_id}", json={"title": "edited"}, headers=headers)
    assert edited.status_code == 200, edited.text
    refused = _assign(client, headers, ticket_id, editor.user_id)
    assert refused.status_code == 403
    assert "tickets.assign" in refused.json()["detail"]
    assert client.get(f"{TICKETS}/{ticket_id}", headers=admin).json()["assignee_id"] is None
