"""HTTP as a real server sees it: a chunked body (no Content-Length) counted against the 1 MiB
limit, and X-Forwarded-For believed only from the proxies HELPDESK_TRUSTED_PROXIES names."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from helpdesk.cli.main import proxy_options
from helpdesk.middleware import MAX_BODY_BYTES
from tests.support.factories import Workspace
from tests.support.live_server import live_server

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024


def _chunks(count: int, size: int = CHUNK) -> Iterator[bytes]:
    # A JSON string that is still open when the limit passes: only the count can refuse it.
    yield b'{"title": "chunked", "customer_email": "c@example.com", "description": "'
    for _ in range(count):
        yield b"x" * size
    yield b'"}'


def test_a_chunked_body_over_one_mebibyte_is_a_413(
    app: FastAPI, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="helpdesk.access"),
        live_server(app, **proxy_options([])) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        response = http.post(
            "/api/v1/tickets",
            content=_chunks(MAX_BODY_BYTES // CHUNK + 1),
            headers={**admin, "Content-Type": "application/json"},
        )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.json() == {
        "detail": "The request body is larger than 1 MiB.",
        "code": "payload_too_large",
    }
    assert response.headers["x-request-id"]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "helpdesk.access"]
    assert [line["status"] for line in lines] == [413]


def test_a_chunked_body_under_the_limit_is_read_whole(app: FastAPI, admin: dict[str, str]) -> None:
    with (
        live_server(app, **proxy_options([])) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        response = http.post(
            "/api/v1/tickets",
            content=_chunks(10, size=4096),
            headers={**admin, "Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "x" * 40_960


def _recorded_address(app: FastAPI, admin: dict[str, str], trusted: list[str]) -> dict[str, Any]:
    """Create a customer through a server run as ``helpdesk serve`` would with ``trusted``, with
    a forged X-Forwarded-For; return the address its audit event and access log line hold."""
    logger = logging.getLogger("helpdesk.access")
    lines: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(record.getMessage()))

    handler = Keep(logging.INFO)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        with (
            live_server(app, **proxy_options(trusted)) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            created = http.post(
                "/api/v1/customers",
                json={"email": "forwarded@example.com", "name": "Forwarded"},
                headers={**admin, "X-Forwarded-For": "203.0.113.9", "X-Request-ID": "fwd-1"},
            )
            assert created.status_code == 201, created.text
            events = http.get(
                "/api/v1/audit/events", params={"action": "customer.create"}, headers=admin
            )
            assert events.status_code == 200, events.text
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    (event,) = [e for e in events.json()["items"] if e["request_id"] == "fwd-1"]
    (line,) = [line for line in lines if line["request_id"] == "fwd-1"]
    return {"audit": event["ip"], "log": line["client"]}


def test_x_forwarded_for_is_ignored_from_a_peer_not_named_a_trusted_proxy(
    app: FastAPI, ws: Workspace, admin: dict[str, str]
) -> None:
    recorded = _recorded_address(app, admin, trusted=[])
    assert recorded == {"audit": "127.0.0.1", "log": "127.0.0.1"}


@pytest.mark.parametrize("trusted", [["127.0.0.1"], ["10.0.0.0/8", "127.0.0.0/8"]])
def test_x_forwarded_for_is_believed_from_a_trusted_proxy(
    app: FastAPI, ws: Workspace, admin: dict[str, str], trusted: list[str]
) -> None:
    recorded = _recorded_address(app, admin, trusted=trusted)
    assert recorded == {"audit": "203.0.113.9", "log": "203.0.113.9"}
