"""The dashboard's figures over real tickets: opened and solved per day within the last 30
days, first-response SLA kept or missed per priority, backlog by status."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tests.support.console import sign_in
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e


def _ticket(client: TestClient, headers: dict[str, str], priority: str) -> int:
    response = client.post(
        "/api/v1/tickets",
        json={"title": "t", "priority": priority, "customer_email": "c@example.com"},
        headers=headers,
    )
    assert response.status_code == 201
    ticket_id: int = response.json()["id"]
    return ticket_id


def _set(runtime: Runtime, ws: Workspace, ticket_id: int, **columns: object) -> None:
    """Back-date a ticket (the tests' own hands behind the app: no route sets these)."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)  # names from this file
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.execute(
            text(f"UPDATE tickets SET {assignments} WHERE id = :id"),
            {**columns, "id": ticket_id},
        )


def test_the_dashboard_counts_the_last_30_days(
    client: TestClient, factory: Factory, ws: Workspace, runtime: Runtime
) -> None:
    headers = factory.headers(ws.admin, ws)
    now = datetime.now(UTC)
    kept = _ticket(client, headers, "high")
    _set(
        runtime,
        ws,
        kept,
        created_at=now - timedelta(days=2),
        sla_due_at=now - timedelta(days=2) + timedelta(hours=4),
        first_response_at=now - timedelta(days=2) + timedelta(hours=1),
    )
    late = _ticket(client, headers, "high")
    _set(
        runtime, ws, late, created_at=now - timedelta(days=1), sla_due_at=now - timedelta(hours=20)
    )
    old = _ticket(client, headers, "low")
    _set(runtime, ws, old, created_at=now - timedelta(days=45))
    solved = _ticket(client, headers, "medium")
    _set(runtime, ws, solved, status="resolved", status_changed_at=now)
    _ticket(client, headers, "critical")  # inside its target still: not decided

    sign_in(client, ws, ws.admin)
    page = client.get("/app/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "4 opened, 1 solved." in html  # the 45-day-old ticket is out of the window
    assert "high 50%" in html
    assert "critical none decided" in html
    assert "open 4" in html  # backlog: every ticket but the solved one is open
    assert "<svg" in html
    assert "<script" not in html
