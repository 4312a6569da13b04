"""SLA due times with time travel: the hours per priority, a workspace's own hours, business
hours in the workspace's time zone, and when a first response breaches the SLA."""

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fastapi.testclient import TestClient

from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from helpdesk.sla.models import WorkspaceSettings
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.integration

TICKETS = "/api/v1/tickets"
BERLIN = ZoneInfo("Europe/Berlin")
# A Wednesday, far from any daylight-saving change.
WEDNESDAY_NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def save_settings(runtime: Runtime, ws: Workspace, **fields: Any) -> None:
    """Write the workspace's settings row directly (no settings endpoint yet); fields left out
    keep their value, or the table's default on the first save."""
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.merge(WorkspaceSettings(id=1, **fields))


@pytest.fixture
def at() -> Iterator[time_machine.Traveller]:
    """Frozen time (no ticking), moved by the test with ``at.move_to``."""
    with time_machine.travel(WEDNESDAY_NOON, tick=False) as traveller:
        yield traveller


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _create(client: TestClient, factory: Factory, ws: Workspace, priority: str) -> dict[str, Any]:
    body = {"title": "Cannot log in", "customer_email": "pat@example.com", "priority": priority}
    return _ok(client.post(TICKETS, json=body, headers=factory.headers(ws.admin, ws)), 201)


def _due(ticket: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(ticket["sla_due_at"])


@pytest.mark.parametrize(
    ("priority", "hours"), [("critical", 1), ("high", 4), ("medium", 24), ("low", 72)]
)
def test_the_first_response_is_due_after_the_hours_of_the_priority(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    at: time_machine.Traveller,
    priority: str,
    hours: int,
) -> None:
    ticket = _create(client, factory, ws, priority)
    assert datetime.fromisoformat(ticket["created_at"]) == WEDNESDAY_NOON
    assert _due(ticket) == WEDNESDAY_NOON + timedelta(hours=hours)


def test_a_workspace_overrides_the_hours_of_some_priorities(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    at: time_machine.Traveller,
) -> None:
    save_settings(runtime, ws, sla_hours={"high": 2, "low": 0.5})
    due = {p: _due(_create(client, factory, ws, p)) - WEDNESDAY_NOON for p in ("high", "low")}
    assert due == {"high": timedelta(hours=2), "low": timedelta(minutes=30)}
    # A priority the workspace leaves out keeps the product's hours.
    assert _due(_create(client, factory, ws, "medium")) == WEDNESDAY_NOON + timedelta(hours=24)


def _berlin(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=BERLIN)


# Business hours Mon-Fri 09:00-17:00 Europe/Berlin (the defaults, in Berlin's zone).
BUSINESS_HOURS = [
    # created (local)                     priority   due (local)
    (("2026-03-04", "10:00"), "critical", ("2026-03-04", "11:00")),
    (("2026-03-04", "16:30"), "critical", ("2026-03-05", "09:30")),  # rolls to next morning
    (("2026-03-06", "16:00"), "high",     ("2026-03-09", "12:00")),  # Friday: 1 h, then Monday
    (("2026-03-07", "11:00"), "high",     ("2026-03-09", "13:00")),  # Saturday: from Monday 9
    (("2026-03-04", "07:30"), "medium",   ("2026-03-06", "17:00")),  # 3 working days, to close
    (("2026-03-04", "18:00"), "low",      ("2026-03-17", "17:00")),  # 9 working days
    # Across the spring change to summer time: still 3 working hours on Monday.
    (("2026-03-27", "16:00"), "high",     ("2026-03-30", "12:00")),
]  # fmt: skip


@pytest.mark.parametrize(("created", "priority", "due"), BUSINESS_HOURS)
def test_business_hours_count_only_working_time_in_the_workspace_zone(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    at: time_machine.Traveller,
    created: tuple[str, str],
    priority: str,
    due: tuple[str, str],
) -> None:
    save_settings(runtime, ws, business_hours_only=True, timezone="Europe/Berlin")
    at.move_to(_berlin(*created))
    ticket = _create(client, factory, ws, priority)
    assert _due(ticket) == _berlin(*due)


def test_business_days_and_hours_are_the_workspace_s_own(
    client: TestClient,
    factory: Factory,
    runtime: Runtime,
    ws: Workspace,
    at: time_machine.Traveller,
) -> None:
    save_settings(
        runtime,
        ws,
        business_hours_only=True,
        timezone="America/New_York",
        business_days="123456",  # Monday to Saturday
        business_start=time(8, 0),
        business_end=time(12, 0),
    )
    new_york = ZoneInfo("America/New_York")
    at.move_to(datetime(2026, 3, 6, 10, 0, tzinfo=new_york))  # Friday, 2 h before closing
    ticket = _create(client, factory, ws, "high")
    assert _due(ticket) == datetime(2026, 3, 7, 10, 0, tzinfo=new_york)  # Saturday counts


@pytest.mark.parametrize(
    ("reply_after", "breached"),
    [
        (timedelta(hours=3, minutes=59), False),
        (timedelta(hours=4), False),  # on the dot is in time
        (timedelta(hours=4, minutes=1), True),
    ],
)
def test_a_first_public_agent_reply_after_the_due_time_breaches_the_sla(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    at: time_machine.Traveller,
    reply_after: timedelta,
    breached: bool,
) -> None:
    agent = factory.member(ws, "agent")
    ticket = _create(client, factory, ws, "high")
    url = f"{TICKETS}/{ticket['id']}"
    # Only the first response counts: a much later second reply changes nothing.
    for moment in (reply_after, timedelta(days=3)):
        at.move_to(WEDNESDAY_NOON + moment)
        headers = factory.headers(agent, ws)  # tokens are short-lived; issue one "now"
        _ok(client.post(f"{url}/comments", json={"body": "On it."}, headers=headers), 201)
        assert _ok(client.get(url, headers=headers))["sla_breached"] is breached


def test_an_internal_note_is_not_a_response_to_the_customer(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    at: time_machine.Traveller,
) -> None:
    agent = factory.member(ws, "agent")
    ticket = _create(client, factory, ws, "critical")
    url = f"{TICKETS}/{ticket['id']}"
    at.move_to(WEDNESDAY_NOON + timedelta(minutes=10))
    note = {"body": "Looking at the logs.", "public": False}
    _ok(client.post(f"{url}/comments", json=note, headers=factory.headers(agent, ws)), 201)
    assert _ok(client.get(url, headers=factory.headers(agent, ws)))["sla_breached"] is False
    at.move_to(WEDNESDAY_NOON + timedelta(hours=2))
    reply = {"body": "Fixed."}
    _ok(client.post(f"{url}/comments", json=reply, headers=factory.headers(agent, ws)), 201)
    assert _ok(client.get(url, headers=factory.headers(agent, ws)))["sla_breached"] is True
