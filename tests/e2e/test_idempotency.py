"""Idempotency-Key on POST routes: a retry with the same key returns the first result and acts
once; a different request under a used key is refused; a request that failed leaves its key free."""

import threading
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from helpdesk.app import create_app
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace
from tests.support.live_server import live_server

pytestmark = pytest.mark.e2e

TICKETS = "/api/v1/tickets"
TICKET = {"title": "Printer on fire", "customer_email": "pat@example.com"}
RACERS = 6


def _count(runtime: Runtime, ws: Workspace, sql: str) -> int:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return int(session.scalar(text(sql)) or 0)


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_a_retried_post_returns_the_first_result_and_creates_nothing_new(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    first = client.post(TICKETS, json=TICKET, headers=_keyed(admin, "create-1"))
    assert first.status_code == 201, first.text
    again = client.post(TICKETS, json=TICKET, headers=_keyed(admin, "create-1"))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 1
    # The replay changed nothing, so it recorded no second ticket.create.
    assert (
        _count(runtime, ws, "SELECT count(*) FROM audit_events WHERE action = 'ticket.create'") == 1
    )


def test_a_post_without_a_key_acts_each_time(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    for _ in range(2):
        assert client.post(TICKETS, json=TICKET, headers=admin).status_code == 201
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 2


def test_a_used_key_with_another_request_is_a_409(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    assert client.post(TICKETS, json=TICKET, headers=_keyed(admin, "k")).status_code == 201
    other = client.post(TICKETS, json={**TICKET, "title": "Another"}, headers=_keyed(admin, "k"))
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 1


def test_keys_are_the_callers_own(
    client: TestClient, factory: Factory, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.headers(factory.member(ws, "agent"), ws)
    for headers in (admin, agent):
        response = client.post(TICKETS, json=TICKET, headers=_keyed(headers, "same-key"))
        assert response.status_code == 201
        assert "idempotency-replayed" not in response.headers
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 2


def test_a_failed_request_leaves_its_key_free(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    member = {"email": "new.agent@example.com", "name": "New Agent", "role": "night_shift"}
    refused = client.post("/api/v1/members", json=member, headers=_keyed(admin, "add-agent"))
    assert refused.status_code == 422, refused.text
    role = {"name": "night_shift", "permissions": ["tickets.read"]}
    assert client.post("/api/v1/roles", json=role, headers=admin).status_code == 201
    added = client.post("/api/v1/members", json=member, headers=_keyed(admin, "add-agent"))
    assert added.status_code == 201, added.text
    assert "idempotency-replayed" not in added.headers


# A non-ASCII key travels as raw latin-1 bytes, as a client could send it.
@pytest.mark.parametrize(
    "key", ["", "x" * 256, "has space", "tab\there", "caf\xe9".encode("latin-1")]
)
def test_a_malformed_key_is_a_422_naming_the_header(
    client: TestClient, admin: dict[str, str], key: str | bytes
) -> None:
    response = client.post(TICKETS, json=TICKET, headers={**admin, "Idempotency-Key": key})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_an_expired_key_is_free_again(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    assert client.post(TICKETS, json=TICKET, headers=_keyed(admin, "old")).status_code == 201
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.execute(
            text("UPDATE idempotency_keys SET created_at = created_at - :age"),
            {"age": timedelta(hours=24, seconds=1)},
        )
    response = client.post(TICKETS, json=TICKET, headers=_keyed(admin, "old"))
    assert response.status_code == 201
    assert "idempotency-replayed" not in response.headers
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 2


def test_concurrent_retries_with_one_key_act_once(
    runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    """Served, so the requests really overlap: the later ones wait on the first one's claim
    and then replay its result."""
    results: list[tuple[int, int]] = []
    start = threading.Barrier(RACERS)

    with live_server(create_app(runtime)) as server, httpx.Client(base_url=server.base_url) as http:

        def post() -> None:
            start.wait()
            response = http.post(TICKETS, json=TICKET, headers=_keyed(admin, "racing"))
            results.append((response.status_code, response.json()["id"]))

        threads = [threading.Thread(target=post) for _ in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == RACERS
    assert {status for status, _ in results} == {201}
    assert len({ticket_id for _, ticket_id in results}) == 1
    assert _count(runtime, ws, "SELECT count(*) FROM tickets") == 1
