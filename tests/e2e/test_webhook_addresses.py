"""With private addresses refused (the production default), a subscription to one is a 422 and
a delivery to one is given up without a request; the tests' own settings allow loopback."""

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from helpdesk.app import create_app
from helpdesk.core.db import tenant_transaction
from helpdesk.outbox.models import DeliveryAttempt
from helpdesk.outbox.worker import deliver_all
from helpdesk.runtime import Runtime
from tests.support.factories import Workspace

pytestmark = pytest.mark.e2e

WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
def strict(runtime: Runtime) -> Runtime:
    settings = runtime.settings.model_copy(update={"webhook_allow_private_addresses": False})
    return dataclasses.replace(runtime, settings=settings)


@pytest.fixture
def strict_client(strict: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(strict), base_url="http://testserver") as client:
        yield client


def _body(url: str) -> dict[str, object]:
    return {"url": url, "events": ["ticket.created"], "secret": "s3cret"}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://localhost/x"]
)
def test_a_subscription_to_a_private_address_is_a_422_naming_the_url(
    strict_client: TestClient, admin: dict[str, str], url: str
) -> None:
    response = strict_client.post(WEBHOOKS, json=_body(url), headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "url"
    assert strict_client.get(WEBHOOKS, headers=admin).json()["items"] == []


def test_a_public_name_is_accepted(strict_client: TestClient, admin: dict[str, str]) -> None:
    body = _body("https://hooks.example.com/helpdesk")
    assert strict_client.post(WEBHOOKS, json=body, headers=admin).status_code == 201


def test_a_delivery_to_a_private_address_is_given_up_unsent(
    client: TestClient,
    strict: Runtime,
    runtime: Runtime,
    httpserver: HTTPServer,
    ws: Workspace,
    admin: dict[str, str],
) -> None:
    # Saved while allowed (an older subscription, or a setting since tightened).
    assert client.post(WEBHOOKS, json=_body(httpserver.url_for("/in")), headers=admin).is_success
    body = {"title": "VPN drops", "customer_email": "pat@example.com"}
    assert client.post("/api/v1/tickets", json=body, headers=admin).status_code == 201
    report = deliver_all(strict, slugs=[ws.slug])
    assert (report.delivered, report.failed, httpserver.log) == (0, 1, [])
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        errors = session.scalars(select(DeliveryAttempt.error)).all()
    assert len(errors) == 1
    assert "public address" in (errors[0] or "")
