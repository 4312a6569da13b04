"""Tickets over HTTP: validation, the status workflow, filters, search and visibility."""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

TICKETS = "/api/v1/tickets"
VALID = {"title": "Printer on fire", "customer_email": "pat@example.com"}


def _create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post(TICKETS, json={**VALID, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_new_ticket_has_the_documented_shape_and_defaults(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = _create(
        client, admin, title="  Printer on fire  ", tags=["Hardware", "urgent", "urgent"]
    )
    assert body["title"] == "Printer on fire"
    assert (body["status"], body["priority"]) == ("open", "medium")
    assert body["tags"] == ["hardware", "urgent"]
    assert body["customer"]["email"] == "pat@example.com"
    assert body["sla_breached"] is False
    assert body["escalated"] is False
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["sla_due_at"]) - created == timedelta(hours=24)
    assert datetime.fromisoformat(body["resolution_due_at"]) - created == timedelta(hours=72)
    assert body["resolution_breached"] is False
    expected = {
        "id",
        "title",
        "description",
        "status",
        "priority",
        "category",
        "tags",
        "customer",
        "assignee_id",
        "sla_due_at",
        "sla_breached",
        "resolution_due_at",
        "resolution_breached",
        "escalated",
        "created_at",
        "updated_at",
    }
    assert set(body) == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"customer_email": None}, "customer_email"),
        ({"description": "x" * 50_001}, "description"),
        ({"tags": ["x" * 65]}, "tags"),
    ],
)
def test_invalid_tickets_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    response = client.post(TICKETS, json={**VALID, **fields}, headers=admin)
    assert response.status_code == 422
    assert any(err["loc"][-1] == field or field in err["loc"] for err in response.json()["detail"])


@pytest.mark.parametrize("title", ["x" * 200, "  " + "x" * 200 + "\t", "x"])
def test_a_title_of_1_to_200_characters_after_trimming_is_accepted(
    client: TestClient, admin: dict[str, str], title: str
) -> None:
    assert _create(client, admin, title=title)["title"] == title.strip()


# The workflow as product defines it: from each status (row), may it move to each status?
STATUSES = ["open", "in_progress", "pending", "resolved", "closed"]
MOVES = {
    "open":        {"in_progress": True, "pending": True, "resolved": True, "closed": True},
    "in_progress": {"open": True, "pending": True, "resolved": True, "closed": True},
    "pending":     {"open": True, "in_progress": True, "resolved": True, "closed": True},
    "resolved":    {"open": True, "in_progress": True, "pending": False, "closed": True},
    "closed":      {"open": True, "in_progress": False, "pending": False, "resolved": False},
}  # fmt: skip
# How to bring a new ticket into each status (every step legal).
PATHS = {
    "open": [],
    "in_progress": ["in_progress"],
    "pending": ["pending"],
    "resolved": ["resolved"],
    "closed": ["closed"],
}


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [(s, t, ok) for s, row in MOVES.items() for t, ok in row.items()],
)
def test_status_workflow(
    client: TestClient, admin: dict[str, str], start: str, target: str, allowed: bool
) -> None:
    ticket = _create(client, admin)
    for step in PATHS[start]:
        assert (
            client.patch(
                f"{TICKETS}/{ticket['id']}", json={"status": step}, headers=admin
            ).status_code
            == 200
        )
    response = client.patch(f"{TICKETS}/{ticket['id']}", json={"status": target}, headers=admin)
    if allowed:
        assert response.status_code == 200
        assert response.json()["status"] == target
    else:
        assert response.status_code == 409
        assert response.json()["code"] == "illegal_status_change"


def test_a_closed_ticket_cannot_be_edited_until_reopened(
    client: TestClient, admin: dict[str, str]
) -> None:
    ticket = _create(client, admin)
    url = f"{TICKETS}/{ticket['id']}"
    client.patch(url, json={"status": "closed"}, headers=admin)
    refused = client.patch(url, json={"title": "new"}, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (409, "ticket_closed")
    assert client.patch(url, json={"status": "open"}, headers=admin).status_code == 200
    assert client.patch(url, json={"title": "new"}, headers=admin).json()["title"] == "new"


def test_update_and_delete(client: TestClient, admin: dict[str, str]) -> None:
    ticket = _create(client, admin)
    url = f"{TICKETS}/{ticket['id']}"
    patched = client.patch(
        url, json={"priority": "high", "category": "Billing", "tags": ["a"]}, headers=admin
    ).json()
    assert (patched["priority"], patched["category"], patched["tags"]) == ("high", "billing", ["a"])
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


@pytest.mark.parametrize("field", ["title", "description", "status", "priority", "tags"])
def test_a_null_for_a_field_that_always_holds_a_value_leaves_it_as_it_was(
    client: TestClient, admin: dict[str, str], field: str
) -> None:
    ticket = _create(client, admin, description="d", priority="high", tags=["kept"])
    patched = client.patch(f"{TICKETS}/{ticket['id']}", json={field: None}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()[field] == ticket[field]


def _titles(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(TICKETS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [t["title"] for t in response.json()["items"]]


def test_filters_and_full_text_search(client: TestClient, admin: dict[str, str]) -> None:
    a = _create(
        client, admin, title="Password reset email never arrives", priority="high", tags=["auth"]
    )
    _create(
        client,
        admin,
        title="Invoice has wrong VAT",
        description="billing address",
        customer_email="x@example.com",
    )
    client.patch(f"{TICKETS}/{a['id']}", json={"status": "pending"}, headers=admin)

    assert _titles(client, admin, status="pending") == [a["title"]]
    assert _titles(client, admin, priority="high") == [a["title"]]
    assert _titles(client, admin, tag="auth") == [a["title"]]
    assert _titles(client, admin, q="passwords") == [a["title"]]  # stemmed
    assert _titles(client, admin, q="billing") == ["Invoice has wrong VAT"]
    assert _titles(client, admin, customer_id=a["customer"]["id"]) == [a["title"]]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _titles(client, admin, created_after=future) == []
    assert len(_titles(client, admin, created_before=future)) == 2
    bad = client.get(TICKETS, params={"status": "lost"}, headers=admin)
    assert bad.status_code == 422


def test_a_forged_cursor_is_a_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get(TICKETS, params={"cursor": "bm9wZQ"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_each_list_binds_its_own_caller_and_filters_though_its_statement_is_compiled_once(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    # The page's SQL is kept per shape (tickets.repository.list_page): two customers, and two
    # values of one filter, share a statement but never each other's values.
    first, second = factory.member(ws, "customer"), factory.member(ws, "customer")
    theirs = {
        who.email: _create(client, admin, customer_email=who.email, priority=priority)["id"]
        for who, priority in ((first, "low"), (second, "high"))
    }
    for who in (first, second, first):
        listed = client.get(TICKETS, headers=factory.headers(who, ws)).json()["items"]
        assert [t["id"] for t in listed] == [theirs[who.email]]
    for priority, who in (("low", first), ("high", second)):
        assert [
            t["id"]
            for t in client.get(TICKETS, params={"priority": priority}, headers=admin).json()[
                "items"
            ]
        ] == [theirs[who.email]]


def test_a_customer_sees_only_their_own_tickets_and_public_comments(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    customer = factory.member(ws, "customer")
    mine = _create(client, admin, customer_email=customer.email.upper())
    theirs = _create(client, admin, customer_email="someone-else@example.com")
    client.post(
        f"{TICKETS}/{mine['id']}/comments", json={"body": "Hi", "public": True}, headers=admin
    )
    client.post(
        f"{TICKETS}/{mine['id']}/comments",
        json={"body": "internal", "public": False},
        headers=admin,
    )

    headers = factory.headers(customer, ws)
    assert [t["id"] for t in client.get(TICKETS, headers=headers).json()["items"]] == [mine["id"]]
    assert [t["id"] for t in client.get(f"{TICKETS}/mine", headers=headers).json()["items"]] == [
        mine["id"]
    ]
    assert client.get(f"{TICKETS}/{theirs['id']}", headers=headers).status_code == 404
    assert client.get(f"{TICKETS}/{theirs['id']}/comments", headers=headers).status_code == 404
    bodies = [
        c["body"]
        for c in client.get(f"{TICKETS}/{mine['id']}/comments", headers=headers).json()["items"]
    ]
    assert bodies == ["Hi"]

    own = client.post(TICKETS, json={"title": "Mine too"}, headers=headers)
    assert own.status_code == 201
    assert own.json()["customer"]["email"].lower() == customer.email.lower()
    reply = client.post(
        f"{TICKETS}/{mine['id']}/comments", json={"body": "Thanks"}, headers=headers
    )
    assert reply.status_code == 201
    note = client.post(
        f"{TICKETS}/{mine['id']}/comments", json={"body": "x", "public": False}, headers=headers
    )
    assert note.status_code == 403
    assert (
        client.post(
            f"{TICKETS}/{theirs['id']}/comments", json={"body": "x"}, headers=headers
        ).status_code
        == 404
    )
    assert (
        client.patch(f"{TICKETS}/{mine['id']}", json={"title": "x"}, headers=headers).status_code
        == 403
    )


def test_a_viewer_reads_and_writes_internal_notes_only(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _create(client, admin)
    viewer = factory.headers(factory.member(ws, "viewer"), ws)
    url = f"{TICKETS}/{ticket['id']}"
    assert client.get(url, headers=viewer).status_code == 200
    changed = client.patch(url, json={"title": "mine now"}, headers=viewer)
    assert changed.status_code == 403
    assert "permission" in changed.json()["detail"]
    assert client.delete(url, headers=viewer).status_code == 403
    public = client.post(f"{url}/comments", json={"body": "hello", "public": True}, headers=viewer)
    assert public.status_code == 403
    internal = client.post(
        f"{url}/comments", json={"body": "note", "public": False}, headers=viewer
    )
    assert internal.status_code == 201
    assert internal.json()["public"] is False


def test_mine_lists_tickets_assigned_to_the_agent(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    assigned = _create(client, admin)
    _create(client, admin, title="not mine")
    response = client.patch(
        f"{TICKETS}/{assigned['id']}", json={"assignee_id": str(agent.user_id)}, headers=admin
    )
    assert response.status_code == 200
    assert [t["id"] for t in client.get(f"{TICKETS}/mine", headers=headers).json()["items"]] == [
        assigned["id"]
    ]
    assert _titles(client, admin, assignee_id=str(agent.user_id)) == [assigned["title"]]
    # An admin with nothing assigned has an empty queue, not everyone's tickets.
    assert client.get(f"{TICKETS}/mine", headers=admin).json()["items"] == []


@pytest.mark.slow
def test_cursor_visits_every_ticket_once_while_tickets_are_created(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.execute(
            text(
                "INSERT INTO customers (email, name) VALUES ('bulk@example.com', 'Bulk');"
                "INSERT INTO tickets (title, customer_id)"
                " SELECT 'bulk ' || n, (SELECT id FROM customers) FROM generate_series(1, 10000) n"
            )
        )
        original = set(session.execute(text("SELECT id FROM tickets")).scalars())
    assert len(original) == 10_000

    stop = threading.Event()
    created: list[int] = []

    def create_while_listing() -> None:
        while not stop.is_set() and len(created) < 200:
            created.append(_create(client, admin, title="late arrival")["id"])

    writer = threading.Thread(target=create_while_listing)
    writer.start()
    seen: list[int] = []
    # Besides the writer, one ticket is created between every two pages, so creation during the
    # listing does not depend on how the threads happen to be scheduled.
    between_pages: list[int] = []
    cursor: str | None = None
    try:
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = client.get(TICKETS, params=params, headers=admin).json()
            seen.extend(t["id"] for t in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            between_pages.append(_create(client, admin, title="between pages")["id"])
    finally:
        stop.set()
        writer.join()
    assert len(between_pages) >= 10_000 // 200
    assert len(seen) == len(set(seen)), "a ticket was listed twice"
    assert original <= set(seen), "a ticket was skipped"
    # A ticket committed before the next page was asked for lies ahead of the cursor.
    assert set(between_pages) <= set(seen), "a ticket created during the listing was skipped"
    assert seen == sorted(seen)
