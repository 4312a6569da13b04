"""A connection lost mid-request, against a served app: a read is retried once on a fresh
connection and succeeds; a write is not repeated, answers 503 ``database_unavailable`` with
Retry-After, and left nothing behind."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from helpdesk.app import create_app
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tenants.locks import LockKey, lock_workspace
from tests.support.factories import Factory, Workspace
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e

WAIT_FOR_BLOCKED_SECONDS = 20.0
# The request is waiting on the workspace's audit-chain lock, which the test holds.
_BLOCKED = text(
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    " AND wait_event = 'advisory' AND pid <> pg_backend_pid()"
)


@pytest.fixture
def served(runtime: Runtime) -> Iterator[LiveServer]:
    with live_server(create_app(runtime)) as server:
        yield server


def _kill_request_waiting_on_chain(runtime: Runtime, ws: Workspace, send: Any) -> Any:
    """Send a request that will wait on the chain lock we hold, terminate its backend while
    it waits, then let go of the lock; return the response."""
    outcome: list[Any] = []
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as holder:
        lock_workspace(holder, LockKey.AUDIT_CHAIN)
        thread = threading.Thread(target=lambda: outcome.append(send()))
        thread.start()
        deadline = time.monotonic() + WAIT_FOR_BLOCKED_SECONDS
        with runtime.engine.connect() as admin:
            while not (pids := admin.execute(_BLOCKED).scalars().all()):
                assert time.monotonic() < deadline, "the request never waited on the lock"
                time.sleep(0.02)
            assert len(pids) == 1, pids
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
    thread.join(WAIT_FOR_BLOCKED_SECONDS)
    assert outcome, "the request did not finish"
    return outcome[0]


def test_a_read_whose_connection_is_lost_is_retried_and_succeeds(
    served: LiveServer, runtime: Runtime, factory: Factory
) -> None:
    ws = factory.workspace()
    headers = factory.headers(ws.admin, ws)
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        created = http.post(
            "/api/v1/tickets",
            json={"title": "Kept", "customer_email": "a@example.com"},
            headers=headers,
        )
        assert created.status_code == 201
        response = _kill_request_waiting_on_chain(
            runtime, ws, lambda: http.get("/api/v1/tickets", headers=headers)
        )
    assert response.status_code == 200, response.text
    assert [t["title"] for t in response.json()["items"]] == ["Kept"]


def test_a_write_whose_connection_is_lost_is_a_503_and_left_nothing(
    served: LiveServer, runtime: Runtime, factory: Factory
) -> None:
    ws = factory.workspace()
    headers = factory.headers(ws.admin, ws)
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        assert http.get("/api/v1/tickets", headers=headers).status_code == 200
        response = _kill_request_waiting_on_chain(
            runtime,
            ws,
            lambda: http.post(
                "/api/v1/tickets",
                json={"title": "Lost", "customer_email": "a@example.com"},
                headers=headers,
            ),
        )
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
        assert int(response.headers["retry-after"]) >= 1
        with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
            assert session.scalar(text("SELECT count(*) FROM tickets")) == 0
        # The service itself is fine: the next request draws a live connection.
        again = http.get("/api/v1/tickets", headers=headers)
        assert again.status_code == 200
