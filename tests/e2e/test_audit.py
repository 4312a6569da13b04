"""The workspace audit trail: one event per request, refusals kept, append-only, tamper-proof."""

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError

from audit.models import AuditEvent
from audit.queries import verify_workspace
from audit.trail import Actor, record_event
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"


@pytest.fixture
def ws(factory: Factory) -> Workspace:
    return factory.workspace()


@pytest.fixture
def admin(factory: Factory, ws: Workspace) -> dict[str, str]:
    return factory.headers(ws.admin, ws)


def _events(runtime: Runtime, ws: Workspace) -> list[AuditEvent]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
    return events


def _ticket(client: TestClient, admin: dict[str, str]) -> int:
    body = {"title": "Audit me", "customer_email": "subject@example.com"}
    ticket_id: int = client.post(f"{API}/tickets", json=body, headers=admin).json()["id"]
    return ticket_id


# (method, path, body, expected action): every request that changes something or reads
# personal data, with the action API.md names for it.
Setup = Callable[[TestClient, dict[str, str], Factory, Workspace], dict[str, Any]]


def _world(
    client: TestClient, admin: dict[str, str], factory: Factory, ws: Workspace
) -> dict[str, Any]:
    ticket = _ticket(client, admin)
    customer = client.post(
        f"{API}/customers", json={"email": "cust@example.com"}, headers=admin
    ).json()
    member = factory.member(ws, "agent")
    client.post(
        f"{API}/roles", json={"name": "spare", "permissions": ["tickets.read"]}, headers=admin
    )
    return {"ticket": ticket, "customer": customer["id"], "member": str(member.user_id)}


NEW_MEMBER = {"email": "m@example.com", "name": "M", "role": "viewer", "password": "long-enough"}
REQUESTS = [
    ("POST", "/tickets", {"title": "x", "customer_email": "a@example.com"}, "ticket.create"),
    ("GET", "/tickets", None, "ticket.list"),
    ("GET", "/tickets/mine", None, "ticket.list"),
    ("GET", "/tickets/{ticket}", None, "ticket.read"),
    ("PATCH", "/tickets/{ticket}", {"priority": "high"}, "ticket.update"),
    ("DELETE", "/tickets/{ticket}", None, "ticket.delete"),
    ("POST", "/tickets/{ticket}/comments", {"body": "hi"}, "comment.create"),
    ("GET", "/tickets/{ticket}/comments", None, "comment.list"),
    ("GET", "/customers", None, "customer.list"),
    ("GET", "/customers/{customer}", None, "customer.read"),
    ("POST", "/customers", {"email": "new-cust@example.com"}, "customer.create"),
    ("PATCH", "/customers/{customer}", {"name": "Renamed"}, "customer.update"),
    ("GET", "/members", None, "member.list"),
    ("POST", "/members", NEW_MEMBER, "member.add"),
    ("PATCH", "/members/{member}", {"role": "viewer"}, "member.role_change"),
    ("DELETE", "/members/{member}", None, "member.remove"),
    ("POST", "/roles", {"name": "another", "permissions": ["tickets.read"]}, "role.create"),
    ("PATCH", "/roles/spare", {"permissions": ["customers.read"]}, "role.update"),
    ("DELETE", "/roles/spare", None, "role.delete"),
    ("GET", "/audit/events", None, "audit.read"),
    ("GET", "/audit/verify", None, "audit.verify"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "action"), REQUESTS, ids=[f"{r[0]} {r[1]}" for r in REQUESTS]
)
def test_each_request_leaves_exactly_one_event(
    client: TestClient,
    runtime: Runtime,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    action: str,
) -> None:
    ids = _world(client, admin, factory, ws)
    before = len(_events(runtime, ws))
    response = client.request(method, API + path.format(**ids), json=body, headers=admin)
    assert response.status_code < 300, response.text
    new = _events(runtime, ws)[before:]
    assert [(e.action, e.outcome) for e in new] == [(action, "success")]
    assert new[0].actor_id == ws.admin.user_id
    assert new[0].request_id == response.headers["x-request-id"]


def test_a_refusal_is_recorded_as_denied(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    viewer = factory.member(ws, "viewer")
    refused = client.patch(
        f"{API}/tickets/{ticket}", json={"title": "x"}, headers=factory.headers(viewer, ws)
    )
    assert refused.status_code == 403
    last = _events(runtime, ws)[-1]
    assert (last.action, last.outcome, last.actor_id) == (
        "tickets.update",
        "denied",
        viewer.user_id,
    )
    assert last.changes["route"] == "/tickets/{ticket_id}"
    assert last.personal["changes"]["path"] == f"/api/v1/tickets/{ticket}"


def test_a_refused_subject_request_keeps_the_address_out_of_the_hashed_changes(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    email = "hidden.subject@example.com"
    refused = client.get(f"{API}/gdpr/subjects/{email}/export", headers=factory.headers(agent, ws))
    assert refused.status_code == 403
    last = _events(runtime, ws)[-1]
    assert (last.action, last.outcome) == ("gdpr.export", "denied")
    assert email not in json.dumps(last.changes)
    assert last.changes["route"] == "/gdpr/subjects/{email}/export"
    assert email in last.personal["changes"]["path"]


def test_a_rolled_back_change_leaves_no_event(runtime: Runtime, ws: Workspace) -> None:
    before = len(_events(runtime, ws))
    with (  # noqa: PT012 - the failure follows the write
        pytest.raises(RuntimeError, match="boom"),
        tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session,
    ):
        record_event(session, actor=Actor.system("test"), action="ticket.update")
        raise RuntimeError("boom")
    assert len(_events(runtime, ws)) == before


def test_a_failed_request_leaves_no_success_event(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    client.patch(f"{API}/tickets/{ticket}", json={"status": "closed"}, headers=admin)
    before = len(_events(runtime, ws))
    illegal = client.patch(f"{API}/tickets/{ticket}", json={"status": "pending"}, headers=admin)
    assert illegal.status_code == 409
    assert len(_events(runtime, ws)) == before


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"]
)
def test_the_workspace_role_cannot_rewrite_the_trail(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], statement: str
) -> None:
    _ticket(client, admin)
    with (
        pytest.raises(ProgrammingError) as excinfo,
        tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session,
    ):
        session.execute(text(statement))
    assert isinstance(excinfo.value.orig, psycopg.errors.InsufficientPrivilege)


_COLUMNS = (
    "occurred_at, actor_id, actor_role, action, target_type, target_id, outcome, request_id,"
    " changes, personal_data, personal, personal_digest, prev_hash, hash"
)
# Swaps two neighbouring events whole (everything but their ids), as a reordering would.
SWAP_WITH_NEXT = (
    f"UPDATE audit_events a SET ({_COLUMNS}) = (SELECT {_COLUMNS} FROM audit_events b"
    " WHERE b.id = CASE WHEN a.id = {k} THEN {k} + 1 ELSE {k} END)"
    " WHERE a.id IN ({k}, {k} + 1)"
)


def _tamper(runtime: Runtime, ws: Workspace, sql: str) -> None:
    """As the owner (a superuser or migration role), as an intruder with database access would."""
    with transaction(runtime.sessions) as session:
        session.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": ws.schema_name}
        )
        session.execute(text(sql))


@pytest.mark.parametrize(
    ("kind", "sql", "first_bad"),
    [
        ("edit", "UPDATE audit_events SET outcome = 'denied' WHERE id = {k}", 0),
        ("edit-changes", "UPDATE audit_events SET changes = '{{}}'::jsonb WHERE id = {k}", 0),
        (
            "edit-personal",
            'UPDATE audit_events SET personal = \'{{"ip": "1.2.3.4"}}\' WHERE id = {k}',
            0,
        ),
        ("delete", "DELETE FROM audit_events WHERE id = {k}", 1),
        ("reorder", SWAP_WITH_NEXT, 0),
    ],
)
def test_tampering_is_detected_at_the_first_bad_event(
    client: TestClient,
    runtime: Runtime,
    ws: Workspace,
    admin: dict[str, str],
    kind: str,
    sql: str,
    first_bad: int,
) -> None:
    for _ in range(3):
        _ticket(client, admin)
    ids = [e.id for e in _events(runtime, ws)]
    assert len(ids) >= 3
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        assert verify_workspace(session).valid
    target = ids[1]
    _tamper(runtime, ws, sql.format(k=target))
    verdict = client.get(f"{API}/audit/verify", headers=admin).json()
    assert verdict["valid"] is False
    assert verdict["first_invalid_id"] == ids[1 + first_bad]


def test_concurrent_writers_do_not_fork_the_chain(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: _ticket(client, admin), range(12)))
    events = _events(runtime, ws)
    assert len({e.prev_hash for e in events}) == len(events)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        verdict = verify_workspace(session)
    assert (verdict.valid, verdict.events_checked) == (True, len(events))


def test_events_api_shape_filters_and_no_secrets(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    client.post(
        f"{API}/members",
        json={
            "email": "secretive@example.com",
            "name": "S",
            "role": "agent",
            "password": "hunter2-hunter2",
        },
        headers=admin,
    )
    page = client.get(
        f"{API}/audit/events", params={"action": "ticket.create"}, headers=admin
    ).json()
    assert [e["target"] for e in page["items"]] == [{"type": "ticket", "id": str(ticket)}]
    event = page["items"][0]
    assert set(event) == {
        "id",
        "occurred_at",
        "actor",
        "action",
        "target",
        "outcome",
        "request_id",
        "ip",
        "user_agent",
        "changes",
        "personal_data",
        "prev_hash",
        "hash",
    }
    assert event["actor"] == {"id": str(ws.admin.user_id), "email": ws.admin.email, "role": "admin"}
    assert event["changes"]["customer_email"] == "subject@example.com"
    everything = client.get(f"{API}/audit/events", params={"limit": 200}, headers=admin).text
    assert "hunter2" not in everything
    compliance = factory.headers(factory.member(ws, "compliance"), ws)
    assert client.get(f"{API}/audit/events", headers=compliance).status_code == 200
    agent = factory.headers(factory.member(ws, "agent"), ws)
    assert client.get(f"{API}/audit/events", headers=agent).status_code == 403


def test_reading_the_trail_is_audited(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    client.get(f"{API}/audit/events", headers=admin)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        reads = session.scalar(select(func.count()).where(AuditEvent.action == "audit.read"))
    assert reads == 1
