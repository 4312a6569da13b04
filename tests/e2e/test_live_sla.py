"""Live SLA state (issue 14, item 2), with time travel and no job run: a ticket is breached from
the moment its first-response target passes unanswered; the sla_breached, unassigned and urgent
filters; and the caller's queue, urgent first, then by due time, then id."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from helpdesk.tickets.models import Ticket
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

TICKETS = "/api/v1/tickets"
START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def at() -> Iterator[time_machine.Traveller]:
    """Frozen time (no ticking), moved by the test with ``at.move_to``."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _create(client: TestClient, headers: dict[str, str], priority: str, title: str) -> int:
    body = {"title": title, "customer_email": "pat@example.com", "priority": priority}
    ticket_id: int = _ok(client.post(TICKETS, json=body, headers=headers), 201)["id"]
    return ticket_id


def _ids(client: TestClient, headers: dict[str, str], query: str) -> list[int]:
    return [t["id"] for t in _ok(client.get(f"{TICKETS}{query}", headers=headers))["items"]]


def _stored_breach(runtime: Runtime, ws: Workspace, ticket_id: int) -> bool:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return bool(session.scalar(select(Ticket.sla_breached).where(Ticket.id == ticket_id)))


def test_a_ticket_is_breached_from_the_moment_its_target_passes_unanswered(
    client: TestClient,
    runtime: Runtime,
    factory: Factory,
    ws: Workspace,
    at: time_machine.Traveller,
) -> None:
    admin = factory.headers(ws.admin, ws)
    agent = factory.headers(factory.member(ws, "agent"), ws)
    one_minute = {"sla_hours": {"critical": 1 / 60}}
    _ok(client.put("/api/v1/settings", json=one_minute, headers=admin))
    unanswered = _create(client, admin, "critical", "Checkout is down")
    answered = _create(client, admin, "critical", "Refund failed")
    _ok(client.post(f"{TICKETS}/{answered}/comments", json={"body": "On it"}, headers=agent), 201)
    closed_in_time = _create(client, admin, "critical", "Duplicate")
    _ok(client.patch(f"{TICKETS}/{closed_in_time}", json={"status": "closed"}, headers=admin))
    resolved_late = _create(client, admin, "critical", "Login loop")
    medium = _create(client, admin, "medium", "Typo on the invoice")

    at.move_to(START + timedelta(seconds=59))
    assert _ids(client, admin, "?sla_breached=true") == []

    at.move_to(START + timedelta(minutes=1))  # the critical target, to the second
    shown = _ok(client.get(f"{TICKETS}/{unanswered}", headers=admin))
    assert shown["sla_breached"] is True
    assert _ids(client, admin, "?sla_breached=true") == [unanswered, resolved_late]
    assert _ids(client, admin, "?sla_breached=false") == [answered, closed_in_time, medium]
    # Computed in the query: no job has run, nothing was stored.
    assert _stored_breach(runtime, ws, unanswered) is False

    # A ticket resolved after its target passed unanswered stays breached once resolved.
    _ok(client.patch(f"{TICKETS}/{resolved_late}", json={"status": "resolved"}, headers=admin))
    at.move_to(START + timedelta(days=3))
    admin = factory.headers(ws.admin, ws)  # the first token has expired by then
    # The medium ticket's 24 hours have passed too; the one closed in time never breaches.
    assert _ids(client, admin, "?sla_breached=true") == [unanswered, resolved_late, medium]
    assert _stored_breach(runtime, ws, resolved_late) is True


def test_the_urgent_and_unassigned_filters_and_the_queue_order(
    client: TestClient, factory: Factory, ws: Workspace, at: time_machine.Traveller
) -> None:
    admin = factory.headers(ws.admin, ws)
    me = factory.member(ws, "agent")
    other = factory.member(ws, "agent")
    mine = factory.headers(me, ws)

    def create(priority: str, title: str, **change: Any) -> int:
        ticket_id = _create(client, admin, priority, title)
        if change:
            _ok(client.patch(f"{TICKETS}/{ticket_id}", json=change, headers=admin))
        at.shift(timedelta(seconds=1))  # distinct due times, in creation order
        return ticket_id

    high = create("high", "High, unassigned")  # due in 4 h
    critical = create("critical", "Critical, unassigned")  # due in 1 h
    low = create("low", "Low, unassigned")  # due in 72 h
    assigned_to_me = create("critical", "Critical, mine", assignee_id=str(me.user_id))
    pending = create("high", "High, pending", status="pending")
    resolved = create("critical", "Critical, resolved", status="resolved")
    theirs = create("medium", "Medium, someone else's", assignee_id=str(other.user_id))
    no_due = create("high", "High, in progress, mine", assignee_id=str(me.user_id))

    assert _ids(client, admin, "?urgent=true") == [high, critical]
    assert _ids(client, admin, "?urgent=false") == [
        low,
        assigned_to_me,
        pending,
        resolved,
        theirs,
        no_due,
    ]
    assert _ids(client, admin, "?unassigned=true") == [high, critical, low, pending, resolved]
    assert _ids(client, admin, "?unassigned=false") == [assigned_to_me, theirs, no_due]
    assert _ids(client, admin, "?urgent=true&priority=critical") == [critical]

    # Urgent first (the soonest due first), then the rest by due time; a ticket without a due
    # time last; pending, resolved and someone else's are not the caller's to work now.
    _clear_due(client, admin, ws, factory, no_due)
    expected = [critical, high, assigned_to_me, low, no_due]
    assert _ids(client, mine, "/queue") == expected
    walked, cursor = [], None
    while True:
        query = "/queue?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = _ok(client.get(f"{TICKETS}{query}", headers=mine))
        walked += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected

    refused = client.get(f"{TICKETS}/queue?cursor=bm9wZQ", headers=mine)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_cursor")


def _clear_due(
    client: TestClient, admin: dict[str, str], ws: Workspace, factory: Factory, ticket_id: int
) -> None:
    """A ticket without a due time (made before SLAs existed, say): in progress, no target."""
    _ok(client.patch(f"{TICKETS}/{ticket_id}", json={"status": "in_progress"}, headers=admin))
    with tenant_transaction(factory.runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.get_one(Ticket, ticket_id).sla_due_at = None
