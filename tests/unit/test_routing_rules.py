"""Routing as a table: the candidate a new ticket goes to, and which priorities auto-assign."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk.sla.models import WorkspaceSettings
from helpdesk.tickets.assignment import Candidate, auto_assigns, choose_assignee

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _candidate(name: str, skills: str, senior: bool, load: int, joined_days: int) -> Candidate:
    return Candidate(
        user_id=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        skills=frozenset(skills.split()),
        senior=senior,
        load=load,
        joined=T0 + timedelta(days=joined_days),
    )


# name: (skills, senior, working tickets, joined on day)
TEAM = {
    "ana": ("billing", False, 5, 0),
    "bo": ("billing vpn", True, 7, 1),
    "cy": ("", True, 1, 2),
    "di": ("", False, 0, 3),
    "ed": ("", False, 0, 4),
}

ROUTES = [
    # category   priority    picked   why
    (None,       "medium",   "di"),   # least loaded; di joined before ed
    (None,       "critical", "cy"),   # the least loaded senior
    ("billing",  "medium",   "ana"),  # the least loaded with the skill
    ("billing",  "critical", "bo"),   # skill first, then seniority, despite the load
    ("vpn",      "low",      "bo"),   # the only one with the skill
    ("printers", "high",     "di"),   # nobody has the skill: least loaded
    ("printers", "critical", "cy"),   # nobody has the skill: senior first
]  # fmt: skip


@pytest.mark.parametrize(("category", "priority", "picked"), ROUTES)
def test_routing_order(category: str | None, priority: str, picked: str) -> None:
    team = [_candidate(name, *attrs) for name, attrs in TEAM.items()]
    expected = next(c.user_id for c, name in zip(team, TEAM, strict=True) if name == picked)
    assert choose_assignee(team, category=category, priority=priority) == expected
    assert choose_assignee(reversed(team), category=category, priority=priority) == expected


def test_nobody_to_pick() -> None:
    assert choose_assignee([], category="billing", priority="critical") is None


@pytest.mark.parametrize(
    ("on", "minimum", "priority", "assigns"),
    [
        (False, "low", "critical", False),
        (True, "low", "low", True),
        (True, "high", "medium", False),
        (True, "high", "high", True),
        (True, "high", "critical", True),
        (True, "critical", "high", False),
    ],
)
def test_which_priorities_auto_assign(on: bool, minimum: str, priority: str, assigns: bool) -> None:
    settings = WorkspaceSettings(auto_assign=on, auto_assign_min_priority=minimum)
    assert auto_assigns(settings, priority) is assigns
