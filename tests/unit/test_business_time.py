"""The rule that keeps every due time computable: business hours hold some time, and counted in
business hours the longest SLA ends within the horizon the due-time walk searches."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from helpdesk.sla.models import WorkspaceSettings
from helpdesk.sla.policy import policy_table
from helpdesk.sla.service import DEFAULT_SETTINGS, business_time_problem, due_after

pytestmark = pytest.mark.unit


def _settings(**overrides: Any) -> WorkspaceSettings:
    return WorkspaceSettings(**{**DEFAULT_SETTINGS, **overrides})


# (overrides, computable?) -- an hour a week for 500 weeks is the least that holds 500 hours.
RULE: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"business_hours_only": True}, True),
    ({"business_days": ""}, False),
    ({"business_start": time(9), "business_end": time(9)}, False),
    ({"business_start": time(10), "business_end": time(9)}, False),
    (
        {"business_hours_only": True, "business_days": "7", "business_end": time(9, 1)},
        False,
    ),
    # Not counted in business hours: narrow hours harm nobody until that is turned on.
    ({"business_days": "7", "business_end": time(9, 1)}, True),
    (
        {
            "business_hours_only": True,
            "business_days": "7",
            "business_end": time(10),
            # The free tier doubles basic: its low first response is the longest target.
            "sla_hours": {"low": 250},
        },
        True,
    ),
    (
        {
            "business_hours_only": True,
            "business_days": "7",
            "business_end": time(10),
            "sla_hours": {"low": 250.5},
        },
        False,
    ),
]


@pytest.mark.parametrize(("overrides", "computable"), RULE)
def test_business_time_rule(overrides: dict[str, Any], computable: bool) -> None:
    settings = _settings(**overrides)
    assert (business_time_problem(settings) is None) == computable
    if computable:
        created = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
        for priorities in policy_table(settings).values():
            for cell in priorities.values():
                for hours in cell.values():
                    assert due_after(created, timedelta(hours=hours), settings) > created
