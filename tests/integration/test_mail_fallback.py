"""E-mail through an ordered list of providers, against real local servers: two SMTP relays
(aiosmtpd) and an HTTP e-mail API (pytest-httpserver). A provider that fails or times out is
skipped for the cool-down and the next one sends; each delivery records its provider; the
primary is used again once the cool-down has passed.

Time is explicit: each pass gets a ``now``, and the providers' cool-downs (``ProviderHealth``)
carry from one pass to the next as the worker carries them, so the test moves through a
cool-down without waiting for it.
"""

import dataclasses
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from helpdesk.core.db import tenant_transaction
from helpdesk.core.settings import MailProvider
from helpdesk.outbox.models import OutboxMessage
from helpdesk.outbox.worker import deliver_all, provider_health
from helpdesk.runtime import Runtime
from tests.support.factories import Workspace
from tests.support.outbox import attempts, counts
from tests.support.smtp import Inbox

pytestmark = pytest.mark.integration

API = "/api/v1"
CUSTOMER = "requester@example.com"
COOLDOWN = timedelta(seconds=60)
TOKEN = "pm-server-token"
ACCEPTED = {"ErrorCode": 0, "Message": "OK", "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"}


@pytest.fixture
def t0() -> datetime:
    """The first pass's clock: safely after every row the test writes (the server stamps those)."""
    return datetime.now(UTC) + timedelta(seconds=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def relay() -> Iterator[Callable[[int], Inbox]]:
    """Starts aiosmtpd on 127.0.0.1 on the given port; stops all at teardown."""
    controllers: list[Controller] = []

    def start(port: int) -> Inbox:
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return inbox

    yield start
    for controller in controllers:
        controller.stop()


def _smtp(name: str, port: int) -> dict[str, Any]:
    return {"type": "smtp", "name": name, "host": "127.0.0.1", "port": port, "tls": "none"}


def _api(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {"type": "postmark", "name": name, "token": TOKEN, "url": url, **options}


def _with_providers(runtime: Runtime, *providers: dict[str, Any]) -> Runtime:
    """The suite's runtime sending through ``providers``, in that order (validated as
    HELPDESK_MAIL_PROVIDERS would be)."""
    settings = runtime.settings.model_copy(
        update={
            "mail_providers": TypeAdapter(list[MailProvider]).validate_python(providers),
            "smtp_host": None,
            "mail_from": "Support <support@helpdesk.example>",
            "delivery_backoff_seconds": 30,
            "mail_provider_cooldown_seconds": COOLDOWN.total_seconds(),
        }
    )
    return dataclasses.replace(runtime, settings=settings)


def _ticket(client: TestClient, headers: dict[str, str], title: str) -> None:
    body = {"title": title, "customer_email": CUSTOMER}
    response = client.post(f"{API}/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text


def _emails(runtime: Runtime, ws: Workspace) -> list[OutboxMessage]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "email")
                .order_by(OutboxMessage.id)
            )
        )
        session.expunge_all()
    return rows


def _subjects(inbox: Inbox) -> list[str]:
    return [str(message["Subject"]).split(": ", 1)[1] for message in inbox.messages()]


def test_a_relay_that_is_down_is_skipped_for_the_cool_down_and_then_used_again(
    client: TestClient,
    runtime: Runtime,
    relay: Callable[[int], Inbox],
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    primary_port, backup_port = _free_port(), _free_port()
    backup = relay(backup_port)  # and nothing listens on the primary's port yet: it is down
    mail = _with_providers(runtime, _smtp("primary", primary_port), _smtp("backup", backup_port))
    health = provider_health(mail.settings)

    def deliver(at: datetime) -> tuple[int, int, int]:
        return counts(deliver_all(mail, slugs=[ws.slug], now=at, mail_health=health))

    _ticket(client, admin, "First")
    assert deliver(t0) == (1, 0, 0)
    assert _subjects(backup) == ["First"]
    [first] = _emails(mail, ws)
    assert (first.provider, first.attempts, first.delivered_at) == ("backup", 1, t0)
    assert attempts(mail, ws, first.id) == [(250, "")]

    # The primary is back, but still cooling down: the backup keeps sending.
    primary = relay(primary_port)
    _ticket(client, admin, "Second")
    assert deliver(t0 + COOLDOWN - timedelta(seconds=1)) == (1, 0, 0)
    assert (_subjects(primary), _subjects(backup)) == ([], ["First", "Second"])

    # The cool-down is over: the primary is tried first again, and sends.
    _ticket(client, admin, "Third")
    assert deliver(t0 + COOLDOWN) == (1, 0, 0)
    _ticket(client, admin, "Fourth")
    assert deliver(t0 + COOLDOWN + timedelta(seconds=1)) == (1, 0, 0)
    assert (_subjects(primary), _subjects(backup)) == (["Third", "Fourth"], ["First", "Second"])
    assert [row.provider for row in _emails(mail, ws)] == ["backup", "backup", "primary", "primary"]


def test_the_http_api_provider_sends_the_message(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request(
        "/email", method="POST", headers={"X-Postmark-Server-Token": TOKEN}
    ).respond_with_json(ACCEPTED)
    mail = _with_providers(runtime, _api("api", httpserver.url_for("/email")))
    _ticket(client, admin, "Invoice shows the wrong VAT")

    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0)) == (1, 0, 0)
    [(request, _)] = httpserver.log
    sent = json.loads(request.get_data())
    assert sent["From"] == "Support <support@helpdesk.example>"
    assert sent["To"] == CUSTOMER
    assert sent["Subject"].endswith("We received your request: Invoice shows the wrong VAT")
    assert sent["TextBody"].startswith("Your ticket #")
    assert sent["MessageStream"] == "outbound"
    headers = {header["Name"]: header["Value"] for header in sent["Headers"]}
    assert headers == {"Auto-Submitted": "auto-generated", "X-Helpdesk-Event": "ticket.created"}
    [row] = _emails(mail, ws)
    assert row.provider == "api"
    assert attempts(mail, ws, row.id) == [(200, "")]


def test_a_5xx_from_the_http_api_falls_back_to_the_relay_and_the_api_cools_down(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    relay: Callable[[int], Inbox],
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/email").respond_with_json(
        {"ErrorCode": 500, "Message": "Internal server error"}, status=503
    )
    port = _free_port()
    inbox = relay(port)
    mail = _with_providers(runtime, _api("api", httpserver.url_for("/email")), _smtp("relay", port))
    health = provider_health(mail.settings)

    _ticket(client, admin, "First")
    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0, mail_health=health)) == (1, 0, 0)
    assert len(httpserver.log) == 1
    assert _subjects(inbox) == ["First"]
    [row] = _emails(mail, ws)
    assert row.provider == "relay"

    _ticket(client, admin, "Second")
    later = t0 + timedelta(seconds=10)
    assert counts(deliver_all(mail, slugs=[ws.slug], now=later, mail_health=health)) == (1, 0, 0)
    assert len(httpserver.log) == 1, "the API was asked again during its cool-down"
    assert _subjects(inbox) == ["First", "Second"]


def test_an_http_api_that_times_out_is_skipped_and_the_relay_sends(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    relay: Callable[[int], Inbox],
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(1.0)  # past the provider's 0.2 s time-out; not a measurement
        return Response(json.dumps(ACCEPTED), content_type="application/json")

    httpserver.expect_request("/email").respond_with_handler(slow)
    port = _free_port()
    inbox = relay(port)
    api = _api("api", httpserver.url_for("/email"), timeout_seconds=0.2)
    mail = _with_providers(runtime, api, _smtp("relay", port))
    _ticket(client, admin, "Slow API")

    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0)) == (1, 0, 0)
    assert _subjects(inbox) == ["Slow API"]
    assert _emails(mail, ws)[0].provider == "relay"


def test_when_every_provider_fails_the_message_is_retried_with_each_reason(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/email").respond_with_json(
        {"ErrorCode": 10, "Message": "Bad or missing Server API token"}, status=401
    )
    mail = _with_providers(
        runtime, _smtp("relay", _free_port()), _api("api", httpserver.url_for("/email"))
    )
    _ticket(client, admin, "Nobody sends this")

    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    [row] = _emails(mail, ws)
    assert (row.provider, row.delivered_at, row.next_attempt_at) == (
        None,
        None,
        t0 + timedelta(seconds=30),
    )
    [(code, error)] = attempts(mail, ws, row.id)
    assert code == 401
    relay_reason, api_reason = error.split("; ")
    assert relay_reason.startswith("relay: ConnectionRefusedError")
    assert api_reason == "api: HTTP 401: Bad or missing Server API token"


def test_a_recipient_refused_outright_is_given_up_without_asking_the_next_provider(
    client: TestClient,
    runtime: Runtime,
    relay: Callable[[int], Inbox],
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    first_port, second_port = _free_port(), _free_port()
    first, second = relay(first_port), relay(second_port)
    first.refuse.add(CUSTOMER)
    mail = _with_providers(runtime, _smtp("first", first_port), _smtp("second", second_port))
    _ticket(client, admin, "Unknown mailbox")

    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0)) == (0, 0, 1)
    assert second.envelopes == []
    [row] = _emails(mail, ws)
    assert attempts(mail, ws, row.id) == [(550, "first: recipient refused (550)")]


def test_the_api_refusing_an_inactive_recipient_is_given_up(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/email").respond_with_json(
        {
            "ErrorCode": 406,
            "Message": "You tried to send to a recipient that has been marked as inactive.",
        },
        status=422,
    )
    mail = _with_providers(runtime, _api("api", httpserver.url_for("/email")))
    _ticket(client, admin, "Bounced before")
    assert counts(deliver_all(mail, slugs=[ws.slug], now=t0)) == (0, 0, 1)
