"""POST /tickets/bulk: one change to up to 500 tickets in one transaction, all or nothing, one
audit event listing every id and change, and each changed ticket published as a single change
would be."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.models import AuditEvent
from helpdesk.core.db import tenant_transaction
from helpdesk.outbox.models import OutboxMessage
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"
BULK = f"{API}/tickets/bulk"


def _create(client: TestClient, headers: dict[str, str], **fields: Any) -> int:
    body = {"title": "Printer on fire", "customer_email": "pat@example.com", **fields}
    response = client.post(f"{API}/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _ticket(client: TestClient, headers: dict[str, str], ticket_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/tickets/{ticket_id}", headers=headers)
    assert response.status_code == 200, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def _subscribe(client: TestClient, admin: dict[str, str]) -> None:
    hook = {"url": "https://hooks.example.com/h", "events": ["ticket.updated"], "secret": "s"}
    assert client.post(f"{API}/webhooks", json=hook, headers=admin).status_code == 201


def _trail(runtime: Runtime, ws: Workspace) -> tuple[list[AuditEvent], list[OutboxMessage]]:
    """The workspace's bulk audit events and its ticket.updated webhook deliveries."""
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "ticket.bulk_update"))
        )
        published = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.event == "ticket.updated")
                .order_by(OutboxMessage.id)
            )
        )
        session.expunge_all()
    return events, published


def test_a_bulk_change_changes_every_ticket_audits_once_and_publishes_each(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _subscribe(client, admin)
    ids = [_create(client, admin) for _ in range(3)]
    already = _create(client, admin, priority="high")
    response = client.post(
        BULK, json={"ids": [*ids, already], "change": {"priority": "high"}}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"changed": ids, "unchanged": [already]}
    assert {_ticket(client, admin, i)["priority"] for i in ids} == {"high"}
    (event,), published = _trail(runtime, ws)
    diff = {"priority": {"before": "medium", "after": "high"}}
    assert event.changes == {
        "ids": [*ids, already],
        "change": {"priority": "high"},
        "tickets": {str(i): diff for i in ids},
    }
    assert (event.target_type, event.outcome) == ("ticket", "success")
    # One webhook event per changed ticket, as three PATCHes would have sent.
    assert [(m.payload["ticket"]["id"], m.payload["changes"]) for m in published] == [
        (i, diff) for i in ids
    ]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"status": "resolved"}, "status", "resolved"),
        ({"tags": ["Outage", "vip"]}, "tags", ["outage", "vip"]),
        ({"assignee_id": "AGENT"}, "assignee_id", "AGENT"),
        ({"assignee_id": None}, "assignee_id", None),
    ],
)
def test_each_kind_of_change(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    change: dict[str, Any],
    field: str,
    expected: Any,
) -> None:
    agent = str(factory.member(ws, "agent").user_id)
    change = {k: agent if v == "AGENT" else v for k, v in change.items()}
    expected = agent if expected == "AGENT" else expected
    ids = [_create(client, admin, tags=["old"]) for _ in range(2)]
    response = client.post(BULK, json={"ids": ids, "change": change}, headers=admin)
    assert response.status_code == 200, response.text
    assert [_ticket(client, admin, i)[field] for i in ids] == [expected, expected]


def _unchanged(client: TestClient, admin: dict[str, str], ids: list[int]) -> list[str]:
    return [_ticket(client, admin, i)["priority"] for i in ids]


def test_one_unknown_id_changes_nothing_and_is_named(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _subscribe(client, admin)
    ids = [_create(client, admin) for _ in range(3)]
    other = factory.workspace()
    # An id that exists in the other workspace only (ids count from 1 in each).
    elsewhere = [_create(client, factory.headers(other.admin, other)) for _ in range(4)][-1]
    assert elsewhere not in ids
    for bad in (max(ids) + 1000, elsewhere):
        body = {"ids": [*ids, bad], "change": {"priority": "critical"}}
        response = client.post(BULK, json=body, headers=admin)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "tickets_not_found"
        assert str(bad) in response.json()["detail"]
        assert _unchanged(client, admin, ids) == ["medium"] * 3
    assert _trail(runtime, ws) == ([], [])


def test_one_ticket_the_workflow_refuses_changes_nothing_and_is_named(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _subscribe(client, admin)
    ids = [_create(client, admin) for _ in range(3)]
    closed = ids[1]
    body = {"status": "closed"}
    assert client.patch(f"{API}/tickets/{closed}", json=body, headers=admin).status_code == 200
    before = [m.id for m in _trail(runtime, ws)[1]]
    response = client.post(BULK, json={"ids": ids, "change": {"priority": "low"}}, headers=admin)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "bulk_change_refused"
    assert f"#{closed}" in response.json()["detail"]
    assert f"#{ids[0]}" not in response.json()["detail"]
    assert _unchanged(client, admin, ids) == ["medium"] * 3
    events, published = _trail(runtime, ws)
    assert (events, [m.id for m in published]) == ([], before)


def test_an_assignee_who_may_not_work_tickets_changes_nothing(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ids = [_create(client, admin) for _ in range(2)]
    viewer = str(factory.member(ws, "viewer").user_id)
    body = {"ids": ids, "change": {"assignee_id": viewer}}
    response = client.post(BULK, json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert [_ticket(client, admin, i)["assignee_id"] for i in ids] == [None, None]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"ids": [], "change": {"priority": "low"}}, ["body", "ids"]),
        ({"ids": list(range(1, 502)), "change": {"priority": "low"}}, ["body", "ids"]),
        ({"ids": [1, 2, 1], "change": {"priority": "low"}}, ["body", "ids"]),
        ({"ids": [0], "change": {"priority": "low"}}, ["body", "ids", 0]),
        ({"ids": [1], "change": {}}, ["body", "change"]),
        ({"ids": [1], "change": {"status": None}}, ["body", "change"]),
        ({"ids": [1], "change": {"title": "no"}}, ["body", "change"]),
        ({"ids": [1], "change": {"priority": "urgent"}}, ["body", "change", "priority"]),
    ],
)
def test_bad_bulk_input_is_a_422_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], loc: list[Any]
) -> None:
    response = client.post(BULK, json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_a_repeated_id_is_named(client: TestClient, admin: dict[str, str]) -> None:
    body = {"ids": [7, 8, 7], "change": {"priority": "low"}}
    response = client.post(BULK, json=body, headers=admin)
    assert "7 repeated" in response.json()["detail"][0]["msg"]


def test_five_hundred_tickets_in_one_request(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    ids = [_create(client, admin) for _ in range(3)]
    # Ids past the tickets that exist are a 404 naming them; the bound itself is accepted.
    padding = list(range(max(ids) + 1, max(ids) + 1 + 500 - len(ids)))
    body = {"ids": [*ids, *padding], "change": {"priority": "low"}}
    response = client.post(BULK, json=body, headers=admin)
    assert response.status_code == 404
    assert str(padding[-1]) in response.json()["detail"]


def test_the_callers_reach_and_permissions_bound_a_bulk_change(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    roles = {
        # assigned scope: sees only its own tickets
        "mine-only": (["tickets.read", "tickets.update", "tickets.bulk"], "assigned"),
        # bulk without update: bulk multiplies a change it must be allowed to make once
        "bulk-only": (["tickets.read", "tickets.bulk"], "all"),
        # update and bulk but not assign
        "no-assign": (["tickets.read", "tickets.update", "tickets.bulk"], "all"),
    }
    for name, (permissions, scope) in roles.items():
        body = {"name": name, "permissions": permissions, "ticket_scope": scope}
        assert client.post(f"{API}/roles", json=body, headers=admin).status_code == 201
    members = {name: factory.member(ws, name) for name in roles}
    headers = {name: factory.headers(member, ws) for name, member in members.items()}
    mine, theirs = _create(client, admin), _create(client, admin)
    assign = {"assignee_id": str(members["mine-only"].user_id)}
    assert client.patch(f"{API}/tickets/{mine}", json=assign, headers=admin).status_code == 200

    def bulk(who: str, ids: list[int], change: dict[str, Any]) -> Any:
        return client.post(BULK, json={"ids": ids, "change": change}, headers=headers[who])

    assert bulk("mine-only", [mine], {"priority": "high"}).status_code == 200
    refused = bulk("mine-only", [mine, theirs], {"priority": "low"})
    assert (refused.status_code, refused.json()["code"]) == (404, "tickets_not_found")
    assert f"No ticket {theirs} " in refused.json()["detail"]
    assert bulk("bulk-only", [mine], {"priority": "low"}).status_code == 403
    refused = bulk("no-assign", [mine], {"assignee_id": None})
    assert refused.status_code == 403
    assert "tickets.assign" in refused.json()["detail"]
    assert bulk("no-assign", [mine], {"priority": "low"}).status_code == 200
    assert _ticket(client, admin, mine)["assignee_id"] == str(members["mine-only"].user_id)
    assert _ticket(client, admin, theirs)["priority"] == "medium"


def test_an_unknown_assignee_id_is_a_422(client: TestClient, admin: dict[str, str]) -> None:
    ticket_id = _create(client, admin)
    body = {"ids": [ticket_id], "change": {"assignee_id": str(uuid.uuid4())}}
    assert client.post(BULK, json=body, headers=admin).status_code == 422
