"""A pooled connection that the server closed while it sat idle (a terminated backend, a
restart) is replaced when a request checks it out, without a ping per request: the request
never sees it, even a write, which is never retried."""

import asyncio
import time

import httpx
import pytest

from helpdesk.app import create_app
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime
from tests.support.factories import Factory
from tests.support.faults import (
    count_backends,
    tagged_url,
    terminate_backends,
    unique_application_name,
)
from tests.support.live_server import live_server

pytestmark = pytest.mark.e2e

# Guards against a hang only.
GONE_WITHIN_SECONDS = 20.0


def test_a_write_after_the_server_closed_every_idle_connection_is_answered_201(
    settings: Settings, database_url: str, factory: Factory
) -> None:
    # The app's connections carry a name of their own, so exactly they can be terminated.
    app_name = unique_application_name("helpdesk_idle")
    runtime = Runtime.connect(settings, tagged_url(database_url, app_name))
    ws = factory.workspace()
    headers = factory.headers(ws.admin, ws)
    try:
        with (
            live_server(create_app(runtime)) as served,
            httpx.Client(base_url=served.base_url, timeout=30) as http,
        ):
            # The request path's pool now holds an idle connection.
            assert http.get("/api/v1/tickets", headers=headers).status_code == 200
            assert asyncio.run(terminate_backends(database_url, app_name)) >= 1
            deadline = time.monotonic() + GONE_WITHIN_SECONDS
            while asyncio.run(count_backends(database_url, app_name)):
                assert time.monotonic() < deadline, "the terminated backends did not exit"
                time.sleep(0.02)

            created = http.post(
                "/api/v1/tickets",
                json={"title": "After the restart", "customer_email": "a@example.com"},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            listed = http.get("/api/v1/tickets", headers=headers)
            assert [t["title"] for t in listed.json()["items"]] == ["After the restart"]
    finally:
        runtime.engine.dispose()
