"""Agents' pages over HTTP: the queue's order and paging, search, assigning to a colleague, and
what a customer's portal leaves out (internal notes, other people's tickets)."""

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

ROW = re.compile(r'<a href="/app/tickets/(\d+)">')


def _ticket(client: TestClient, headers: dict[str, str], title: str, **extra: str) -> int:
    body = {"title": title, "customer_email": "c@example.com", **extra}
    response = client.post("/api/v1/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def test_the_queue_puts_urgent_first_and_marks_breaches(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    low = _ticket(client, headers, "Low one", priority="low")
    urgent = _ticket(client, headers, "Critical one", priority="critical")
    sign_in(client, ws, ws.admin)
    html = client.get("/app/tickets").text
    assert [int(i) for i in ROW.findall(html)] == [urgent, low]
    assert "Work queue" in html


def test_the_queue_pages_with_the_apis_cursor(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    created = [_ticket(client, headers, f"Ticket {n}") for n in range(51)]
    sign_in(client, ws, ws.admin)
    first = client.get("/app/tickets").text
    shown = ROW.findall(first)
    assert len(shown) == 50
    next_page = re.search(r'href="(/app/tickets\?cursor=[^"]+)" rel="next"', first)
    assert next_page
    second = client.get(next_page.group(1).replace("&amp;", "&")).text
    rest = ROW.findall(second)
    assert sorted(int(i) for i in shown + rest) == created
    assert 'rel="next"' not in second


def test_search_finds_by_words_and_keeps_the_filters(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    vpn = _ticket(client, headers, "VPN tunnel keeps dropping")
    _ticket(client, headers, "Invoice is wrong")
    sign_in(client, ws, ws.admin)
    html = client.get("/app/tickets", params={"q": "tunnel", "status": "open"}).text
    assert [int(i) for i in ROW.findall(html)] == [vpn]
    assert 'value="tunnel"' in html
    assert '<option value="open" selected>' in html


def test_a_customer_sees_public_replies_only_and_their_own_tickets_only(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    customer = factory.member(ws, "customer")
    headers = factory.headers(ws.admin, ws)
    theirs = _ticket(client, headers, "Mine", customer_email=customer.email)
    other = _ticket(client, headers, "Someone else's", customer_email="else@example.com")
    for body, public in (("A public answer", True), ("A private note", False)):
        client.post(
            f"/api/v1/tickets/{theirs}/comments",
            json={"body": body, "public": public},
            headers=headers,
        )
    csrf = sign_in(client, ws, customer)
    listing = client.get("/app/portal").text
    assert "Mine" in listing
    assert "Someone else" not in listing
    page = client.get(f"/app/portal/tickets/{theirs}").text
    assert "A public answer" in page
    assert "A private note" not in page
    assert client.get(f"/app/portal/tickets/{other}").status_code == 404
    # Nor can they write an internal note through the staff form.
    note = client.post(
        f"/app/tickets/{theirs}/comments",
        data={"body": "sneaky", "visibility": "internal", "csrf_token": csrf},
        headers={"Origin": ORIGIN},
    )
    assert note.status_code == 403


def test_what_people_type_is_shown_as_text_never_as_markup(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    ticket = _ticket(client, headers, "<img src=x onerror=alert(1)>")
    client.post(
        f"/api/v1/tickets/{ticket}/comments",
        json={"body": "<script>alert(2)</script>"},
        headers=headers,
    )
    sign_in(client, ws, ws.admin)
    for path in ("/app/tickets", f"/app/tickets/{ticket}"):
        html = client.get(path).text
        assert "<img src=x" not in html
        assert "<script>alert" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in client.get(f"/app/tickets/{ticket}").text


def test_an_agent_assigns_a_ticket_to_another_member_who_works_tickets(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    ticket = _ticket(client, headers, "Printer on fire")
    colleague = factory.member(ws, "agent")
    viewer = factory.member(ws, "viewer")
    csrf = sign_in(client, ws, factory.member(ws, "agent"))
    page = client.get(f"/app/tickets/{ticket}").text
    # The choice is by name, among those who may work tickets: a viewer cannot.
    assert f'<option value="{colleague.user_id}">agent user ({colleague.email})</option>' in page
    assert f'<option value="{ws.admin.user_id}">' in page
    assert str(viewer.user_id) not in page

    response = client.post(
        f"/app/tickets/{ticket}",
        data={"assignee": str(colleague.user_id), "csrf_token": csrf},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    assert '<dd id="ticket-assignee">agent user</dd>' in response.text
    saved = client.get(f"/api/v1/tickets/{ticket}", headers=headers).json()
    assert saved["assignee_id"] == str(colleague.user_id)


def test_assigning_to_a_member_who_cannot_work_tickets_is_refused_clearly(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    ticket = _ticket(client, factory.headers(ws.admin, ws), "Printer on fire")
    viewer = factory.member(ws, "viewer")
    csrf = sign_in(client, ws, ws.admin)
    for choice, reason in (
        (str(viewer.user_id), "The assignee must be a member of this workspace who may work"),
        ("not-an-id", "assignee_id: Input should be a valid UUID"),
    ):
        response = client.post(
            f"/app/tickets/{ticket}",
            data={"assignee": choice, "csrf_token": csrf},
            headers={"Origin": ORIGIN},
        )
        assert response.status_code == 422, choice
        assert reason in response.text


def test_a_role_without_tickets_assign_gets_no_assignee_choice(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    created = client.post(
        "/api/v1/roles",
        json={"name": "triage", "permissions": ["tickets.read", "tickets.update"]},
        headers=factory.headers(ws.admin, ws),
    )
    assert created.status_code == 201, created.text
    ticket = _ticket(client, factory.headers(ws.admin, ws), "Printer on fire")
    sign_in(client, ws, factory.member(ws, "triage"))
    page = client.get(f"/app/tickets/{ticket}").text
    assert "Change status" in page
    assert 'id="set-assignee"' not in page
