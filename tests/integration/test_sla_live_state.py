"""Live SLA state with time travel: a breach shows the moment the target passes, with no job run;
tier policies set both targets; the resolution clock stands still while a ticket is pending; the
urgent and unassigned filters and the work queue hold what API.md says, in its order; the rule
over a loaded ticket and the SQL the filters run agree."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient

from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.integration

API = "/api/v1"
TICKETS = f"{API}/tickets"
# A Wednesday noon; wall-clock targets (the default: not business hours). ``at`` comes first in
# each test's fixtures, so tokens are issued on the travelled clock.
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def at() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


Who = Callable[[], dict[str, str]]


@pytest.fixture
def admin(at: time_machine.Traveller, factory: Factory, ws: Workspace) -> Who:
    """The workspace admin's headers, with a token fresh on the travelled clock at each call
    (an access token lives 15 minutes, and these tests travel hours)."""
    return lambda: factory.headers(ws.admin, ws)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _ticket(
    client: TestClient,
    who: Who,
    priority: str,
    *,
    customer: str = "pat@example.com",
    title: str = "Cannot log in",
) -> dict[str, Any]:
    body = {"title": title, "customer_email": customer, "priority": priority}
    return _ok(client.post(TICKETS, json=body, headers=who()), 201)


def _get(client: TestClient, who: Who, ticket_id: int) -> dict[str, Any]:
    return _ok(client.get(f"{TICKETS}/{ticket_id}", headers=who()))


def _patch(client: TestClient, who: Who, ticket_id: int, **change: Any) -> Any:
    return _ok(client.patch(f"{TICKETS}/{ticket_id}", json=change, headers=who()))


def _ids(client: TestClient, who: Who, path: str = "", **params: Any) -> list[int]:
    body = _ok(client.get(f"{TICKETS}{path}", params={"limit": 200, **params}, headers=who()))
    return [item["id"] for item in body["items"]]


def _hours(ticket: dict[str, Any], field: str) -> float:
    due = datetime.fromisoformat(ticket[field])
    return (due - datetime.fromisoformat(ticket["created_at"])).total_seconds() / 3600


def test_an_unanswered_ticket_is_breached_the_moment_its_target_passes(
    at: time_machine.Traveller, client: TestClient, admin: Who
) -> None:
    late = _ticket(client, admin, "critical")
    answered = _ticket(client, admin, "critical")
    reply = {"body": "Looking into it", "public": True}
    _ok(client.post(f"{TICKETS}/{answered['id']}/comments", json=reply, headers=admin()), 201)

    at.move_to(T0 + timedelta(minutes=59))
    assert _get(client, admin, late["id"])["sla_breached"] is False
    assert late["id"] not in _ids(client, admin, sla_breached="true")
    at.move_to(T0 + timedelta(hours=1, seconds=1))
    # No job has run: the breach is read from the clock.
    assert _get(client, admin, late["id"])["sla_breached"] is True
    assert _get(client, admin, answered["id"])["sla_breached"] is False
    breached = _ids(client, admin, sla_breached="true")
    assert late["id"] in breached
    assert answered["id"] not in breached
    assert answered["id"] in _ids(client, admin, sla_breached="false")


# tier: (first response, resolution) hours of a high ticket, API.md's factors of basic's 4 / 24.
TIERS = [("free", 8, 48), ("basic", 4, 24), ("premium", 2, 12), ("enterprise", 1, 6)]


@pytest.mark.parametrize(("tier", "first", "resolution"), TIERS)
def test_a_customer_s_tier_sets_both_targets(
    at: time_machine.Traveller,
    client: TestClient,
    admin: Who,
    tier: str,
    first: float,
    resolution: float,
) -> None:
    email = f"{tier}@example.com"
    customer = {"email": email, "name": tier.title(), "tier": tier}
    _ok(client.post(f"{API}/customers", json=customer, headers=admin()), 201)
    ticket = _ticket(client, admin, "high", customer=email)
    assert (_hours(ticket, "sla_due_at"), _hours(ticket, "resolution_due_at")) == (
        first,
        resolution,
    )


def test_a_workspace_overrides_one_cell_and_the_rest_follow_basic(
    at: time_machine.Traveller, client: TestClient, admin: Who
) -> None:
    settings = {
        "sla_hours": {"low": 10},
        "sla_policies": {"premium": {"critical": {"first_response_hours": 0.25}}},
    }
    saved = _ok(client.put(f"{API}/settings", json=settings, headers=admin()))
    targets = saved["sla_targets"]
    assert targets["premium"]["critical"] == {"first_response_hours": 0.25, "resolution_hours": 2}
    # Basic's own low hours, doubled for free; resolution keeps its default.
    assert targets["free"]["low"] == {"first_response_hours": 20, "resolution_hours": 336}
    assert saved["sla_policies"] == settings["sla_policies"]
    customer = {"email": "vip@example.com", "name": "Vip", "tier": "premium"}
    _ok(client.post(f"{API}/customers", json=customer, headers=admin()), 201)
    ticket = _ticket(client, admin, "critical", customer="vip@example.com")
    assert _hours(ticket, "sla_due_at") == 0.25


def test_the_resolution_clock_stands_still_while_the_ticket_is_pending(
    at: time_machine.Traveller, client: TestClient, admin: Who
) -> None:
    ticket = _ticket(client, admin, "critical")  # basic: resolution due in 4 h
    ticket_id = ticket["id"]
    at.move_to(T0 + timedelta(hours=1))
    _patch(client, admin, ticket_id, status="pending")
    at.move_to(T0 + timedelta(hours=10))
    # Past the original due time, but the clock stopped after 1 of its 4 hours.
    assert _get(client, admin, ticket_id)["resolution_breached"] is False
    resumed = _patch(client, admin, ticket_id, status="open")
    assert datetime.fromisoformat(resumed["resolution_due_at"]) == T0 + timedelta(hours=13)
    at.move_to(T0 + timedelta(hours=13))
    assert _get(client, admin, ticket_id)["resolution_breached"] is False
    at.move_to(T0 + timedelta(hours=13, seconds=1))
    assert _get(client, admin, ticket_id)["resolution_breached"] is True


def test_resolving_late_makes_the_breaches_final(
    at: time_machine.Traveller, client: TestClient, admin: Who
) -> None:
    on_time = _ticket(client, admin, "critical")
    late = _ticket(client, admin, "critical")
    at.move_to(T0 + timedelta(minutes=30))
    _patch(client, admin, on_time["id"], status="resolved")
    at.move_to(T0 + timedelta(hours=5))
    resolved = _patch(client, admin, late["id"], status="resolved")
    assert (resolved["sla_breached"], resolved["resolution_breached"]) == (True, True)
    at.move_to(T0 + timedelta(days=3))
    assert _get(client, admin, late["id"])["resolution_breached"] is True
    kept = _get(client, admin, on_time["id"])
    assert (kept["sla_breached"], kept["resolution_breached"]) == (False, False)


def test_urgent_unassigned_and_the_queue_hold_what_api_md_says(
    at: time_machine.Traveller,
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: Who,
) -> None:
    agent: Member = factory.member(ws, "agent")
    other: Member = factory.member(ws, "agent")

    def mine() -> dict[str, str]:
        return factory.headers(agent, ws)

    made: dict[str, int] = {}
    # name: priority, then what happens to it
    for name, priority in [
        ("high_open", "high"),
        ("critical_open", "critical"),
        ("critical_pending", "critical"),
        ("critical_resolved", "critical"),
        ("critical_mine", "critical"),
        ("critical_theirs", "critical"),
        ("low_open", "low"),
        ("medium_progress", "medium"),
    ]:
        made[name] = _ticket(client, admin, priority, title=name)["id"]
        at.shift(timedelta(minutes=1))
    _patch(client, admin, made["critical_pending"], status="pending")
    _patch(client, admin, made["critical_resolved"], status="resolved")
    _patch(client, admin, made["critical_mine"], assignee_id=str(agent.user_id))
    _patch(client, admin, made["critical_theirs"], assignee_id=str(other.user_id))
    _patch(client, admin, made["medium_progress"], status="in_progress")
    ours = set(made.values())

    urgent = [i for i in _ids(client, admin, urgent="true") if i in ours]
    assert urgent == [made["high_open"], made["critical_open"]]
    unassigned = {i for i in _ids(client, admin, unassigned="true") if i in ours}
    assert unassigned == ours - {made["critical_mine"], made["critical_theirs"]}
    not_urgent = {i for i in _ids(client, admin, urgent="false") if i in ours}
    assert not_urgent == ours - set(urgent)

    # Urgent first (each by due time: critical's 1 h comes before high's 4 h), then by due time:
    # the critical ticket assigned to the caller (due 1 h after its creation), medium (24 h),
    # low (72 h). Pending, resolved and someone else's tickets are not the caller's work now.
    queue = [i for i in _ids(client, mine, "/queue") if i in ours]
    assert queue == [
        made["critical_open"],
        made["high_open"],
        made["critical_mine"],
        made["medium_progress"],
        made["low_open"],
    ]


def test_the_breach_filter_and_each_ticket_s_flag_agree_at_every_moment(
    at: time_machine.Traveller, client: TestClient, admin: Who
) -> None:
    made = [_ticket(client, admin, p)["id"] for p in ("critical", "high", "medium", "low")]
    _patch(client, admin, made[1], status="pending")
    _patch(client, admin, made[2], status="resolved")
    for hours in (0.5, 1.5, 5, 30, 100):
        at.move_to(T0 + timedelta(hours=hours))
        flagged = {i for i in made if _get(client, admin, i)["sla_breached"]}
        filtered = {i for i in _ids(client, admin, sla_breached="true") if i in made}
        assert flagged == filtered, hours
        assert {i for i in _ids(client, admin, sla_breached="false") if i in made} == (
            set(made) - flagged
        )
