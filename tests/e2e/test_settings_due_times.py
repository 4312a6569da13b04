"""Settings an admin may save always leave every due time computable: what would not is a 422
with a sentence, and after any accepted PUT /settings every priority's ticket can be created."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e

SETTINGS = "/api/v1/settings"
TICKETS = "/api/v1/tickets"
PRIORITIES = ("low", "medium", "high", "critical")

ONE_MINUTE_A_WEEK = {
    "business_hours_only": True,
    "business_days": "7",
    "business_start": "09:00",
    "business_end": "09:01",
}

# (settings, why no due time is computable)
REFUSED: list[tuple[dict[str, Any], str]] = [
    (ONE_MINUTE_A_WEEK, "72 hours of low priority at a minute a week take 80 years"),
    (
        {**ONE_MINUTE_A_WEEK, "business_end": "10:00", "sla_hours": {"low": 8784}},
        "8,784 hours at an hour a week take 169 years",
    ),
    ({"business_start": "10:00", "business_end": "10:00"}, "no business hours in a day"),
    ({"business_start": "09:00+05:00"}, "a time with an offset: the zone says where"),
    ({"business_end": "17:00Z"}, "a time with an offset: the zone says where"),
]


@pytest.mark.parametrize(("body", "why"), REFUSED)
def test_settings_that_leave_a_due_time_uncomputable_are_a_422_with_a_sentence(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], why: str
) -> None:
    before = client.get(SETTINGS, headers=admin).json()
    response = client.put(SETTINGS, json=body, headers=admin)
    assert response.status_code == 422, (why, response.text)
    (error,) = response.json()["detail"]
    assert error["loc"][0] == "body", why
    assert error["msg"].endswith("."), error
    assert client.get(SETTINGS, headers=admin).json() == before
    _every_priority_can_be_created(client, admin)


def test_a_later_change_that_would_break_due_times_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    narrow = {**ONE_MINUTE_A_WEEK, "business_hours_only": False}
    assert client.put(SETTINGS, json=narrow, headers=admin).status_code == 200
    response = client.put(SETTINGS, json={"business_hours_only": True}, headers=admin)
    assert response.status_code == 422, response.text
    _every_priority_can_be_created(client, admin)


# Narrow but workable business hours, and the zone's daylight-saving jumps.
ACCEPTED: list[dict[str, Any]] = [
    {**ONE_MINUTE_A_WEEK, "business_end": "17:00", "sla_hours": {"low": 300}},
    {
        "business_hours_only": True,
        "timezone": "Europe/Berlin",
        "business_days": "7",
        "business_start": "02:00",
        "business_end": "03:00",
        "sla_hours": {"low": 100},
    },
    {
        "business_hours_only": True,
        "timezone": "America/Santiago",
        "business_days": "1234567",
        "business_start": "00:00",
        "business_end": "23:59:59.999999",
        "sla_hours": {"low": 8784},
    },
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_after_an_accepted_put_every_priority_can_be_created(
    client: TestClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.put(SETTINGS, json=body, headers=admin)
    assert response.status_code == 200, response.text
    _every_priority_can_be_created(client, admin)


def _every_priority_can_be_created(client: TestClient, admin: dict[str, str]) -> None:
    for priority in PRIORITIES:
        body = {"title": "due", "customer_email": "due@example.com", "priority": priority}
        created = client.post(TICKETS, json=body, headers=admin)
        assert created.status_code == 201, (priority, created.text)
        assert created.json()["sla_due_at"] > created.json()["created_at"]
