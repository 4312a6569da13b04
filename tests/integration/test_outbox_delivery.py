"""The delivery worker against real servers: webhooks to pytest-httpserver, e-mail to aiosmtpd.

Time is explicit: each pass gets a ``now``, so backoff is checked exactly and nothing waits on
the wall clock. Every pass names its workspace, so other tests' outboxes are left alone.
"""

import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from werkzeug import Request, Response

from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.outbox.models import OutboxMessage
from helpdesk.outbox.worker import deliver_all, retry_delay, run_worker
from helpdesk.runtime import Runtime
from helpdesk.sla.models import WorkspaceSettings
from tests.support.factories import Factory, Workspace
from tests.support.outbox import attempts, counts
from tests.support.smtp import Inbox

pytestmark = pytest.mark.integration

API = "/api/v1"
SECRET = "whsec_integration_secret"
CUSTOMER = "requester@example.com"


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def t0() -> datetime:
    """The first pass's clock: safely after every row the test writes (the server stamps those)."""
    return datetime.now(UTC) + timedelta(seconds=5)


Configure = Callable[..., Runtime]


@pytest.fixture
def configured(runtime: Runtime) -> Configure:
    """The suite's runtime with some settings changed; engine and sessions are shared."""

    def configure(**overrides: Any) -> Runtime:
        settings = runtime.settings.model_copy(update=overrides)
        return dataclasses.replace(runtime, settings=settings)

    return configure


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _ticket(client: TestClient, headers: dict[str, str], title: str = "VPN drops hourly") -> int:
    body = {"title": title, "customer_email": CUSTOMER, "customer_name": "Rita Requester"}
    response = client.post(f"{API}/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def _subscribe(client: TestClient, headers: dict[str, str], url: str) -> None:
    body = {"url": url, "events": ["ticket.created"], "secret": SECRET}
    response = client.post(f"{API}/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text


def _rows(runtime: Runtime, ws: Workspace, kind: str) -> list[OutboxMessage]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )
        session.expunge_all()
    return rows


def _only(runtime: Runtime, ws: Workspace, kind: str = "webhook") -> OutboxMessage:
    rows = _rows(runtime, ws, kind)
    assert len(rows) == 1
    return rows[0]


# --- webhooks ------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert [retry_delay(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(50, 30) == timedelta(hours=1)
    assert retry_delay(10_000, 30) == timedelta(hours=1)


def test_a_5xx_is_retried_after_the_backoff_and_then_delivered(
    client: TestClient,
    configured: Configure,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    runtime = configured(delivery_backoff_seconds=30, delivery_max_attempts=5)
    httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=500)
    httpserver.expect_request("/hook").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/hook"))
    _ticket(client, admin)

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    row = _only(runtime, ws)
    assert (row.attempts, row.next_attempt_at, row.last_error) == (
        1,
        t0 + timedelta(seconds=30),
        "HTTP 500",
    )
    # Not due yet: nothing is sent a second early.
    early = deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(seconds=29))
    assert (counts(early), len(httpserver.log)) == ((0, 0, 0), 1)

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(seconds=30))) == (
        1,
        0,
        0,
    )
    row = _only(runtime, ws)
    assert (row.attempts, row.last_error, row.failed_at) == (2, None, None)
    assert row.delivered_at == t0 + timedelta(seconds=30)
    assert attempts(runtime, ws, row.id) == [(500, "HTTP 500"), (200, "")]
    # A redelivery is the same delivery: same id, same bytes, same signature.
    first, second = (request for request, _ in httpserver.log)
    assert first.headers["X-Webhook-Delivery"] == second.headers["X-Webhook-Delivery"]
    assert first.get_data() == second.get_data()
    assert first.headers["X-Webhook-Signature"] == second.headers["X-Webhook-Signature"]


def test_a_webhook_that_keeps_failing_is_given_up_after_the_last_attempt(
    client: TestClient,
    configured: Configure,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    runtime = configured(delivery_backoff_seconds=30, delivery_max_attempts=3)
    httpserver.expect_request("/down").respond_with_data("unavailable", status=503)
    _subscribe(client, admin, httpserver.url_for("/down"))
    _ticket(client, admin)

    # 30 s after the first failure, then 60 s after the second; the third is the last.
    schedule = [t0, t0 + timedelta(seconds=30), t0 + timedelta(seconds=90)]
    reports = [counts(deliver_all(runtime, slugs=[ws.slug], now=at)) for at in schedule[:2]]
    assert reports == [(0, 1, 0), (0, 1, 0)]
    assert _only(runtime, ws).next_attempt_at == schedule[2]
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=schedule[2])) == (0, 0, 1)

    row = _only(runtime, ws)
    assert (row.attempts, row.failed_at, row.delivered_at) == (3, schedule[2], None)
    assert row.last_error == "HTTP 503"
    assert attempts(runtime, ws, row.id) == [(503, "HTTP 503")] * 3
    later = deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(days=30))
    assert (counts(later), len(httpserver.log)) == ((0, 0, 0), 3)


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (301, False),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_which_answers_are_retried(
    client: TestClient,
    configured: Configure,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
    status: int,
    retried: bool,
) -> None:
    runtime = configured(delivery_max_attempts=5)
    headers = {"Location": "https://elsewhere.example.com/"} if status == 301 else None
    httpserver.expect_request("/answer").respond_with_data("no", status=status, headers=headers)
    _subscribe(client, admin, httpserver.url_for("/answer"))
    _ticket(client, admin)

    report = deliver_all(runtime, slugs=[ws.slug], now=t0)

    row = _only(runtime, ws)
    assert attempts(runtime, ws, row.id) == [(status, f"HTTP {status}")]
    if retried:
        assert counts(report) == (0, 1, 0)
        assert (row.failed_at, row.next_attempt_at) == (None, t0 + timedelta(seconds=30))
    else:
        assert counts(report) == (0, 0, 1)
        assert row.failed_at == t0
    assert len(httpserver.log) == 1  # a redirect is not followed


def test_a_time_out_is_retried(
    client: TestClient,
    configured: Configure,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    runtime = configured(webhook_timeout_seconds=0.2, delivery_backoff_seconds=30)
    release = threading.Event()

    def stall(_: Request) -> Response:
        # Holds the answer until the worker has given up waiting (bounded, should the test fail).
        release.wait(10)
        return Response("late")

    httpserver.expect_oneshot_request("/slow").respond_with_handler(stall)
    httpserver.expect_request("/slow").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/slow"))
    _ticket(client, admin)

    try:
        report = deliver_all(runtime, slugs=[ws.slug], now=t0)
    finally:
        release.set()
    assert counts(report) == (0, 1, 0)
    row = _only(runtime, ws)
    [(code, error)] = attempts(runtime, ws, row.id)
    assert code is None
    assert "timed out" in error

    retry = deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(seconds=30))
    assert counts(retry) == (1, 0, 0)


def test_a_refused_connection_is_retried(
    client: TestClient, configured: Configure, ws: Workspace, admin: dict[str, str], t0: datetime
) -> None:
    runtime = configured(delivery_backoff_seconds=10)
    _subscribe(client, admin, f"http://127.0.0.1:{_free_port()}/nobody-home")
    _ticket(client, admin)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    row = _only(runtime, ws)
    assert row.next_attempt_at == t0 + timedelta(seconds=10)
    [(code, error)] = attempts(runtime, ws, row.id)
    assert code is None
    assert error.startswith("ConnectError")


def test_a_message_locked_by_another_worker_is_skipped(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/hook"))
    _ticket(client, admin)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as other_worker:
        other_worker.scalars(select(OutboxMessage).with_for_update()).all()
        # SKIP LOCKED: the pass neither waits for the lock nor sends the locked row.
        assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 0, 0)
    assert httpserver.log == []
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (1, 0, 0)


def test_a_pass_takes_batches_up_to_its_bound_and_leaves_the_rest_for_the_next(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/hook"))
    for n in range(3):
        _ticket(client, admin, f"ticket {n}")
    first = deliver_all(runtime, slugs=[ws.slug], now=t0, batch_size=1, max_batches=2)
    assert counts(first) == (2, 0, 0)
    rest = deliver_all(runtime, slugs=[ws.slug], now=t0, batch_size=1, max_batches=2)
    assert counts(rest) == (1, 0, 0)
    # Oldest first, each exactly once.
    sent = [
        json.loads(request.get_data())["data"]["ticket"]["title"] for request, _ in httpserver.log
    ]
    assert sent == ["ticket 0", "ticket 1", "ticket 2"]


def test_a_suspended_workspaces_deliveries_wait_for_it(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/hook"))
    _ticket(client, admin)

    def set_status(status: str) -> None:
        with transaction(runtime.sessions) as session:
            session.execute(
                text("UPDATE public.tenants SET status = :s WHERE id = :t"),
                {"s": status, "t": ws.id},
            )

    set_status("suspended")
    try:
        held = deliver_all(runtime, slugs=[ws.slug], now=t0)
    finally:
        set_status("active")
    assert (held.tenants, counts(held), httpserver.log) == (0, (0, 0, 0), [])
    assert _only(runtime, ws).attempts == 0
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (1, 0, 0)


def test_the_in_process_worker_delivers_until_told_to_stop(
    client: TestClient,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    _subscribe(client, admin, httpserver.url_for("/hook"))
    _ticket(client, admin)
    stop = threading.Event()
    stop.set()  # one pass, then return: no thread left behind by the test
    run_worker(runtime, stop=stop, slugs=[ws.slug])
    assert len(httpserver.log) == 1
    assert _only(runtime, ws).delivered_at is not None


# --- e-mail --------------------------------------------------------------------------------


SmtpServer = Callable[..., tuple[Inbox, int]]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Starts aiosmtpd on 127.0.0.1 (on a chosen port, or a free one); stops all at teardown."""
    controllers: list[Controller] = []

    def start(port: int | None = None, **smtp_options: Any) -> tuple[Inbox, int]:
        inbox = Inbox()
        port = port or _free_port()
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, **smtp_options
        )
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def _mail_runtime(configured: Configure, port: int, **overrides: Any) -> Runtime:
    settings: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "mail_from": "Support <support@helpdesk.example>",
        "delivery_backoff_seconds": 30,
    }
    return configured(**{**settings, **overrides})


def test_customer_and_assignee_get_their_notifications(
    client: TestClient,
    configured: Configure,
    factory: Factory,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    inbox, port = smtp_server()
    runtime = _mail_runtime(configured, port)
    agent = factory.member(ws, "agent")
    ticket_id = _ticket(client, admin, "Invoice shows the wrong VAT")
    assigned = client.patch(
        f"{API}/tickets/{ticket_id}", json={"assignee_id": str(agent.user_id)}, headers=admin
    )
    assert assigned.status_code == 200, assigned.text
    resolved = client.patch(
        f"{API}/tickets/{ticket_id}", json={"status": "resolved"}, headers=admin
    )
    assert resolved.status_code == 200

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (3, 0, 0)

    received = [(e.mail_from, e.rcpt_tos) for e in inbox.envelopes]
    assert received == [
        ("support@helpdesk.example", [CUSTOMER]),
        ("support@helpdesk.example", [agent.email]),
        ("support@helpdesk.example", [CUSTOMER]),
    ]
    created, assignment, resolution = inbox.messages()
    title = "Invoice shows the wrong VAT"
    assert created["Subject"] == f"[#{ticket_id}] We received your request: {title}"
    assert assignment["Subject"] == f"[#{ticket_id}] assigned to you: {title}"
    assert resolution["Subject"] == f"[#{ticket_id}] Resolved: {title}"
    assert [m["To"] for m in (created, assignment, resolution)] == [CUSTOMER, agent.email, CUSTOMER]
    assert [m["X-Helpdesk-Event"] for m in (created, assignment, resolution)] == [
        "ticket.created",
        "ticket.assigned",
        "ticket.resolved",
    ]
    for message in (created, assignment, resolution):
        assert message["From"] == "Support <support@helpdesk.example>"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Message-ID"].endswith("@helpdesk.example>")
    assert f"Your ticket #{ticket_id} was marked resolved" in resolution.get_content()
    rows = _rows(runtime, ws, "email")
    assert all(row.delivered_at == t0 and row.attempts == 1 for row in rows)
    assert [attempts(runtime, ws, row.id) for row in rows] == [[(250, "")]] * 3


def test_an_auto_assigned_ticket_notifies_the_agent_it_went_to(
    client: TestClient,
    configured: Configure,
    factory: Factory,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    inbox, port = smtp_server()
    runtime = _mail_runtime(configured, port)
    agent = factory.member(ws, "agent")
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        session.merge(WorkspaceSettings(id=1, auto_assign=True))
    ticket_id = _ticket(client, admin, "Printer jams")
    shown = client.get(f"{API}/tickets/{ticket_id}", headers=admin).json()
    assert shown["assignee_id"] == str(agent.user_id)

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (2, 0, 0)
    assert [e.rcpt_tos for e in inbox.envelopes] == [[CUSTOMER], [agent.email]]
    assert inbox.messages()[1]["Subject"] == f"[#{ticket_id}] assigned to you: Printer jams"


def test_unassigning_or_changing_other_fields_sends_no_assignment_mail(
    client: TestClient,
    configured: Configure,
    factory: Factory,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    inbox, port = smtp_server()
    runtime = _mail_runtime(configured, port)
    agent = factory.member(ws, "agent")
    ticket_id = _ticket(client, admin)
    url = f"{API}/tickets/{ticket_id}"
    for change in (
        {"assignee_id": str(agent.user_id)},
        {"assignee_id": str(agent.user_id)},  # the same assignee again is no new assignment
        {"priority": "high", "status": "in_progress"},
        {"assignee_id": None},
    ):
        response = client.patch(url, json=change, headers=admin)
        assert response.status_code == 200, response.text

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (2, 0, 0)
    assert [e.rcpt_tos for e in inbox.envelopes] == [[CUSTOMER], [agent.email]]


def test_mail_waits_while_the_relay_is_down_and_goes_out_later(
    client: TestClient,
    configured: Configure,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    port = _free_port()  # nothing listens here yet
    runtime = _mail_runtime(configured, port)
    _ticket(client, admin)

    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    row = _only(runtime, ws, "email")
    assert (row.attempts, row.next_attempt_at) == (1, t0 + timedelta(seconds=30))
    [(code, error)] = attempts(runtime, ws, row.id)
    assert code is None
    # The single-relay settings are one provider, named "smtp".
    assert error.startswith("smtp: ConnectionRefusedError")

    inbox, _ = smtp_server(port)
    later = deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(seconds=30))
    assert counts(later) == (1, 0, 0)
    assert [e.rcpt_tos for e in inbox.envelopes] == [[CUSTOMER]]
    assert _only(runtime, ws, "email").delivered_at == t0 + timedelta(seconds=30)


def test_mail_is_given_up_after_the_last_attempt(
    client: TestClient, configured: Configure, ws: Workspace, admin: dict[str, str], t0: datetime
) -> None:
    runtime = _mail_runtime(configured, _free_port(), delivery_max_attempts=2)  # nobody listens
    _ticket(client, admin)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    last = t0 + timedelta(seconds=30)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=last)) == (0, 0, 1)
    row = _only(runtime, ws, "email")
    assert (row.attempts, row.failed_at, row.delivered_at) == (2, last, None)
    assert len(attempts(runtime, ws, row.id)) == 2
    later = deliver_all(runtime, slugs=[ws.slug], now=t0 + timedelta(days=30))
    assert counts(later) == (0, 0, 0)


def test_starttls_that_the_relay_does_not_offer_sends_nothing_in_clear(
    client: TestClient,
    configured: Configure,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    inbox, port = smtp_server()
    runtime = _mail_runtime(configured, port, smtp_tls="starttls")
    _ticket(client, admin)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    assert inbox.envelopes == []
    [(_, error)] = attempts(runtime, ws, _only(runtime, ws, "email").id)
    assert "STARTTLS" in error


def test_the_relay_login_uses_the_configured_credentials(
    client: TestClient,
    configured: Configure,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    # AUTH over a plain connection only because this relay is on loopback in a test.
    inbox, port = smtp_server(auth_require_tls=False)
    wrong = _mail_runtime(
        configured, port, smtp_username="helpdesk", smtp_password=SecretStr("not-it")
    )
    _ticket(client, admin)
    assert counts(deliver_all(wrong, slugs=[ws.slug], now=t0)) == (0, 1, 0)
    [(code, _)] = attempts(wrong, ws, _only(wrong, ws, "email").id)
    assert code == 535

    right = _mail_runtime(
        configured, port, smtp_username="helpdesk", smtp_password=SecretStr("relay-password")
    )
    assert counts(deliver_all(right, slugs=[ws.slug], now=t0 + timedelta(seconds=30))) == (
        1,
        0,
        0,
    )
    # smtplib tries each mechanism the relay offers before it gives up on a password.
    assert set(inbox.logins[:-1]) == {(b"helpdesk", b"not-it")}
    assert inbox.logins[-1] == (b"helpdesk", b"relay-password")
    assert len(inbox.envelopes) == 1


def test_a_recipient_the_relay_refuses_outright_is_not_retried(
    client: TestClient,
    configured: Configure,
    smtp_server: SmtpServer,
    ws: Workspace,
    admin: dict[str, str],
    t0: datetime,
) -> None:
    inbox, port = smtp_server()
    inbox.refuse.add(CUSTOMER)
    runtime = _mail_runtime(configured, port)
    _ticket(client, admin)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 0, 1)
    row = _only(runtime, ws, "email")
    assert (row.attempts, row.failed_at) == (1, t0)
    assert attempts(runtime, ws, row.id) == [(550, "smtp: recipient refused (550)")]


def test_without_an_smtp_host_mail_waits_in_the_outbox(
    client: TestClient, configured: Configure, ws: Workspace, admin: dict[str, str], t0: datetime
) -> None:
    runtime = configured(smtp_host=None)
    _ticket(client, admin)
    assert counts(deliver_all(runtime, slugs=[ws.slug], now=t0)) == (0, 0, 0)
    row = _only(runtime, ws, "email")
    assert (row.attempts, row.delivered_at, row.failed_at) == (0, None, None)
