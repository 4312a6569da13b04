"""A ticket's live SLA state as tables: breached, and urgent."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk.tickets.live_state import is_breached, is_urgent
from helpdesk.tickets.models import Ticket

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PAST, FUTURE = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("status", "due", "first_response", "stored", "breached"),
    [
        ("open", PAST, None, False, True),
        ("open", NOW, None, False, True),  # from the moment the target passes
        ("open", FUTURE, None, False, False),
        ("open", PAST, PAST - timedelta(minutes=5), False, False),  # answered in time
        ("in_progress", PAST, None, False, True),
        ("pending", PAST, None, False, True),
        ("resolved", PAST, None, False, False),  # the clock stopped: what was stored counts
        ("resolved", PAST, None, True, True),
        ("closed", FUTURE, None, True, True),
        ("open", None, None, False, False),  # no target, no breach
        ("open", FUTURE, NOW, True, True),  # answered late earlier: stored
    ],
)
def test_breached(
    status: str, due: datetime | None, first_response: datetime | None, stored: bool, breached: bool
) -> None:
    ticket = Ticket(
        status=status, sla_due_at=due, first_response_at=first_response, sla_breached=stored
    )
    assert is_breached(ticket, NOW) is breached


@pytest.mark.parametrize(
    ("status", "priority", "assigned", "urgent"),
    [
        ("open", "critical", False, True),
        ("in_progress", "high", False, True),
        ("open", "medium", False, False),
        ("open", "critical", True, False),
        ("pending", "critical", False, False),
        ("resolved", "critical", False, False),
        ("closed", "high", False, False),
    ],
)
def test_urgent(status: str, priority: str, assigned: bool, urgent: bool) -> None:
    ticket = Ticket(
        status=status, priority=priority, assignee_id=uuid.uuid4() if assigned else None
    )
    assert is_urgent(ticket) is urgent
