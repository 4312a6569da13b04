"""Webhooks over HTTP: admin-only subscriptions whose secret never comes back, an outbox row in
the same transaction as the change, and signed deliveries to a real local HTTP server."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from typer.testing import CliRunner
from werkzeug import Request

from audit.models import AuditEvent
from helpdesk.cli import app as cli_app
from helpdesk.core.db import tenant_transaction
from helpdesk.outbox.models import DeliveryAttempt, OutboxMessage
from helpdesk.outbox.service import WEBHOOK_EVENTS
from helpdesk.outbox.worker import deliver_all
from helpdesk.runtime import Runtime
from helpdesk.webhooks.schemas import WebhookEvent
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"
WEBHOOKS = f"{API}/webhooks"
SECRET = "whsec_0123456789abcdef"
ALL_EVENTS = ["ticket.created", "ticket.updated", "comment.created"]


def _subscribe(
    client: TestClient, headers: dict[str, str], url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body = {"url": url, "events": events or ALL_EVENTS, "secret": SECRET}
    response = client.post(WEBHOOKS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _ticket(client: TestClient, headers: dict[str, str], title: str = "Printer on fire") -> int:
    body = {"title": title, "customer_email": "requester@example.com"}
    response = client.post(f"{API}/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def _webhook_rows(runtime: Runtime, ws: Workspace) -> list[OutboxMessage]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "webhook")
                .order_by(OutboxMessage.id)
            )
        )
        session.expunge_all()
    return rows


def _attempts(runtime: Runtime, ws: Workspace) -> list[DeliveryAttempt]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = list(session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))
        session.expunge_all()
    return rows


def _verified(request: Request, secret: str) -> dict[str, Any]:
    """What a receiver does: recompute the HMAC over the raw body and compare in constant time."""
    body = request.get_data()
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Webhook-Signature"], expected)
    document: dict[str, Any] = json.loads(body)
    return document


def _soon() -> datetime:
    """A moment safely after every row the test has written (their times come from the server)."""
    return datetime.now(UTC) + timedelta(seconds=5)


def test_the_schema_accepts_exactly_the_events_the_outbox_publishes() -> None:
    assert {event.value for event in WebhookEvent} == set(WEBHOOK_EVENTS)


def test_admin_manages_webhooks_and_never_sees_the_secret(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    created = _subscribe(client, admin, "https://hooks.example.com/helpdesk", ["ticket.created"])
    assert set(created) == {"id", "url", "events", "active", "secret_set", "created_at"}
    assert created["url"] == "https://hooks.example.com/helpdesk"
    assert created["events"] == ["ticket.created"]
    assert (created["active"], created["secret_set"]) == (True, True)

    listed = client.get(WEBHOOKS, headers=admin)
    assert listed.status_code == 200
    assert listed.json() == {"items": [created], "next_cursor": None}
    for response in (listed, client.get("/openapi.json")):
        assert SECRET not in response.text

    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        audited = session.scalars(
            select(AuditEvent.changes).where(AuditEvent.action == "webhook.create")
        ).one()
    assert audited == {"url": created["url"], "events": ["ticket.created"]}

    assert client.delete(f"{WEBHOOKS}/{created['id']}", headers=admin).status_code == 204
    assert client.get(WEBHOOKS, headers=admin).json()["items"] == []
    again = client.delete(f"{WEBHOOKS}/{created['id']}", headers=admin)
    assert (again.status_code, again.json()["code"]) == (404, "webhook_not_found")


def test_repeated_events_are_stored_once(client: TestClient, admin: dict[str, str]) -> None:
    events = ["comment.created", "ticket.created", "comment.created"]
    created = _subscribe(client, admin, "http://hooks.example.com/", events)
    assert created["events"] == ["comment.created", "ticket.created"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/" + "x" * 2000}, "url"),
        ({"events": ["ticket.deleted"]}, "events"),
        ({"events": ["ticket.created", "everything"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "ticket.created"}, "events"),
        ({"secret": ""}, "secret"),
        ({"secret": "   "}, "secret"),
        ({"secret": "s" * 201}, "secret"),
        ({"secret": None}, "secret"),
    ],
)
def test_invalid_webhooks_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    body = {"url": "https://hooks.example.com/", "events": ["ticket.created"], "secret": SECRET}
    body.update(fields)
    response = client.post(WEBHOOKS, json=body, headers=admin)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors
    assert all(error["loc"][:2] == ["body", field] for error in errors)


def test_a_missing_field_is_422_naming_it(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(WEBHOOKS, json={"url": "https://hooks.example.com/"}, headers=admin)
    assert response.status_code == 422
    assert sorted(error["loc"][1] for error in response.json()["detail"]) == ["events", "secret"]


@pytest.mark.parametrize("role", ["agent", "viewer", "compliance", "customer"])
def test_only_admins_manage_webhooks(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str], role: str
) -> None:
    hook = _subscribe(client, admin, "https://hooks.example.com/")
    headers = factory.headers(factory.member(ws, role), ws)
    body = {"url": "https://evil.example.com/", "events": ALL_EVENTS, "secret": "mine"}
    for response in (
        client.get(WEBHOOKS, headers=headers),
        client.post(WEBHOOKS, json=body, headers=headers),
        client.delete(f"{WEBHOOKS}/{hook['id']}", headers=headers),
    ):
        assert response.status_code == 403, response.text
        assert "permission" in response.json()["detail"]
    assert [h["id"] for h in client.get(WEBHOOKS, headers=admin).json()["items"]] == [hook["id"]]


def test_webhooks_list_pages_by_cursor(client: TestClient, admin: dict[str, str]) -> None:
    ids = [_subscribe(client, admin, f"https://hooks.example.com/{n}")["id"] for n in range(3)]
    first = client.get(WEBHOOKS, params={"limit": 2}, headers=admin).json()
    assert [h["id"] for h in first["items"]] == ids[:2]
    assert first["next_cursor"]
    rest = client.get(
        WEBHOOKS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    assert [h["id"] for h in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None


def test_another_workspaces_webhook_is_not_found(client: TestClient, factory: Factory) -> None:
    a, b = factory.workspace(), factory.workspace()
    ha, hb = factory.headers(a.admin, a), factory.headers(b.admin, b)
    hook = _subscribe(client, ha, "https://hooks.example.com/a")
    assert client.get(WEBHOOKS, headers=hb).json()["items"] == []
    assert client.delete(f"{WEBHOOKS}/{hook['id']}", headers=hb).status_code == 404
    assert [h["id"] for h in client.get(WEBHOOKS, headers=ha).json()["items"]] == [hook["id"]]


def test_changes_are_delivered_signed_to_their_subscriber(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
) -> None:
    httpserver.expect_request("/hooks", method="POST").respond_with_data("thanks")
    _subscribe(client, admin, httpserver.url_for("/hooks"))
    ticket_id = _ticket(client, admin)
    patched = client.patch(f"{API}/tickets/{ticket_id}", json={"priority": "high"}, headers=admin)
    assert patched.status_code == 200
    comment = client.post(
        f"{API}/tickets/{ticket_id}/comments", json={"body": "On it."}, headers=admin
    )
    assert comment.status_code == 201
    queued = _webhook_rows(runtime, ws)
    assert [row.event for row in queued] == ALL_EVENTS

    report = deliver_all(runtime, slugs=[ws.slug], now=_soon())

    assert (report.delivered, report.retrying, report.failed) == (3, 0, 0)
    assert len(httpserver.log) == 3
    received = [request for request, _ in httpserver.log]
    documents = [_verified(request, SECRET) for request in received]
    assert [d["event"] for d in documents] == ALL_EVENTS
    assert [r.headers["X-Webhook-Event"] for r in received] == ALL_EVENTS
    assert [r.headers["X-Webhook-Delivery"] for r in received] == [str(row.id) for row in queued]
    assert all(r.headers["Content-Type"] == "application/json" for r in received)
    created, updated, commented = documents
    assert set(created) == {"event", "occurred_at", "data"}
    assert created["occurred_at"].endswith("Z")
    assert created["data"]["ticket"]["id"] == ticket_id
    assert created["data"]["ticket"]["customer"]["email"] == "requester@example.com"
    assert updated["data"]["changes"] == {"priority": {"before": "medium", "after": "high"}}
    assert commented["data"]["comment"]["body"] == "On it."
    # The body is canonical JSON, so a receiver that re-serialises it gets the signed bytes back.
    body = received[0].get_data()
    assert body == json.dumps(created, sort_keys=True, separators=(",", ":")).encode()
    # A receiver holding another secret rejects the delivery.
    with pytest.raises(AssertionError):
        _verified(received[0], "not-the-secret")

    delivered = _webhook_rows(runtime, ws)
    assert all(row.delivered_at is not None and row.attempts == 1 for row in delivered)
    assert [(a.outbox_id, a.status_code) for a in _attempts(runtime, ws)] == [
        (row.id, 200) for row in queued
    ]
    # Delivered once is delivered: the next pass sends nothing.
    again = deliver_all(runtime, slugs=[ws.slug], now=_soon() + timedelta(days=1))
    assert (again.delivered, len(httpserver.log)) == (0, 3)


def test_each_workspace_delivers_its_own_events_with_its_own_secret(
    client: TestClient, runtime: Runtime, httpserver: HTTPServer, factory: Factory
) -> None:
    a, b = factory.workspace(), factory.workspace()
    secrets = {a.slug: "secret-of-a", b.slug: "secret-of-b"}
    for ws in (a, b):
        httpserver.expect_request(f"/{ws.slug}").respond_with_data("ok")
        headers = factory.headers(ws.admin, ws)
        body = {
            "url": httpserver.url_for(f"/{ws.slug}"),
            "events": ["ticket.created"],
            "secret": secrets[ws.slug],
        }
        assert client.post(WEBHOOKS, json=body, headers=headers).status_code == 201
        _ticket(client, headers, f"ticket of {ws.slug}")

    report = deliver_all(runtime, slugs=[a.slug, b.slug], now=_soon())

    assert (report.tenants, report.delivered) == (2, 2)
    received = {request.path.strip("/"): request for request, _ in httpserver.log}
    for slug, request in received.items():
        assert _verified(request, secrets[slug])["data"]["ticket"]["title"] == f"ticket of {slug}"
    assert set(received) == {a.slug, b.slug}


def test_only_subscribed_events_are_queued(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _subscribe(client, admin, "https://hooks.example.com/comments", ["comment.created"])
    ticket_id = _ticket(client, admin)
    client.patch(f"{API}/tickets/{ticket_id}", json={"priority": "low"}, headers=admin)
    assert _webhook_rows(runtime, ws) == []
    client.post(f"{API}/tickets/{ticket_id}/comments", json={"body": "Hello"}, headers=admin)
    assert [row.event for row in _webhook_rows(runtime, ws)] == ["comment.created"]


def test_a_refused_change_queues_nothing(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _subscribe(client, admin, "https://hooks.example.com/")
    ticket_id = _ticket(client, admin)
    closed = client.patch(f"{API}/tickets/{ticket_id}", json={"status": "closed"}, headers=admin)
    assert closed.status_code == 200
    before = len(_webhook_rows(runtime, ws))
    refused = client.patch(f"{API}/tickets/{ticket_id}", json={"title": "late"}, headers=admin)
    assert refused.status_code == 409
    assert len(_webhook_rows(runtime, ws)) == before == 2


def test_deleting_a_webhook_drops_its_pending_deliveries(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
) -> None:
    hook = _subscribe(client, admin, httpserver.url_for("/gone"))
    _ticket(client, admin)
    assert len(_webhook_rows(runtime, ws)) == 1
    assert client.delete(f"{WEBHOOKS}/{hook['id']}", headers=admin).status_code == 204
    assert _webhook_rows(runtime, ws) == []
    report = deliver_all(runtime, slugs=[ws.slug], now=_soon())
    assert (report.delivered, report.retrying, report.failed, httpserver.log) == (0, 0, 0, [])


def test_the_cli_job_delivers_a_workspaces_outbox(
    cli: CliRunner,
    client: TestClient,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
) -> None:
    httpserver.expect_request("/cli").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/cli"), ["ticket.created"])
    _ticket(client, admin)
    result = cli.invoke(cli_app, ["jobs", "deliver-webhooks", "--tenant", ws.slug])
    assert result.exit_code == 0, result.output
    assert "1 workspace(s): 1 delivered, 0 to retry, 0 failed" in result.output
    _verified(httpserver.log[0][0], SECRET)
