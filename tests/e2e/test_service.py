"""Service endpoints and the HTTP conventions every response follows."""

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from helpdesk.app import create_app
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_migrations_are_at_head(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
    assert echoed == "abc-123"


@pytest.mark.parametrize("unsafe", ["has space", "semi;colon", "x" * 65, "quote'"])
def test_an_unsafe_request_id_is_replaced(client: TestClient, unsafe: str) -> None:
    header = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
    assert header != unsafe
    assert len(header) == 32


def test_malformed_json_is_a_400_not_a_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_validation_errors_keep_fastapis_list_form(client: TestClient) -> None:
    response = client.post("/api/v1/auth/login", json={"email": "a@b.example"})
    assert response.status_code == 422
    assert any(err["loc"][-1] == "password" for err in response.json()["detail"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/auth/login", {"email": "a@b.example", "password": ["s3cret-guess"]}, "password"),
        ("/api/v1/auth/refresh", {"refresh_token": {"leaked": "s3cret-guess"}}, "refresh_token"),
    ],
)
def test_a_validation_error_does_not_echo_what_was_sent(
    client: TestClient, path: str, body: dict[str, object], field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert [err["loc"][-1] for err in response.json()["detail"]] == [field]
    assert "s3cret-guess" not in response.text


def test_each_request_logs_one_line_with_the_route_not_the_path(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    email = "logged.subject@example.com"
    with caplog.at_level(logging.INFO, logger="helpdesk.access"):
        response = client.get(f"/api/v1/gdpr/subjects/{email}/export")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "helpdesk.access"]
    assert [(line["request_id"], line["route"], line["status"]) for line in lines] == [
        (response.headers["x-request-id"], "/gdpr/subjects/{email}/export", 401)
    ]
    assert email not in caplog.text


def test_a_body_over_one_mebibyte_is_a_413(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login",
        content=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_openapi_describes_every_api_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/auth/login" in paths
    assert "/api/v1/platform/tenants" in paths
    assert "/api/v1/tickets/{ticket_id}" in paths


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


def test_metrics_count_requests_by_route_template_without_a_token(client: TestClient) -> None:
    route = {"method": "GET", "route": "/tickets/{ticket_id}", "status": "401"}
    before = _sample(client.get("/metrics").text, "helpdesk_http_requests_total", **route) or 0
    for ticket_id in (1, 2, 3):
        assert client.get(f"/api/v1/tickets/{ticket_id}").status_code == 401
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert _sample(response.text, "helpdesk_http_requests_total", **route) == before + 3
    assert "/api/v1/tickets/1" not in response.text
    assert _sample(response.text, "helpdesk_db_pool_size") is not None
    assert _sample(response.text, "helpdesk_db_pool_connections", state="checked_out") == 0


@pytest.fixture
def far_from_utc(settings: Settings, database_url: str) -> Iterator[Runtime]:
    """A runtime whose database sessions start in a time zone far from UTC, as a server left at
    its host's zone would give them."""
    url = make_url(database_url).update_query_dict({"options": "-c timezone=Asia/Kolkata"})
    runtime = Runtime.connect(settings, url.render_as_string(hide_password=False))
    yield runtime
    runtime.engine.dispose()


def test_times_are_utc_whatever_the_servers_time_zone(
    far_from_utc: Runtime, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    with far_from_utc.engine.connect() as connection:
        assert connection.execute(text("SHOW timezone")).scalar() == "Asia/Kolkata"
    with TestClient(create_app(far_from_utc)) as client:
        created = client.post(
            "/api/v1/tickets", json={"title": "t", "customer_email": "c@example.com"}, headers=admin
        )
        assert created.status_code == 201, created.text
        ticket = client.get(f"/api/v1/tickets/{created.json()['id']}", headers=admin).json()
        member = client.get("/api/v1/members", headers=admin).json()["items"][0]
        event = client.get("/api/v1/audit/events", headers=admin).json()["items"][0]
    # Read back from the database (a server default, or a value that went through it).
    for moment in (
        ticket["created_at"],
        ticket["sla_due_at"],
        member["created_at"],
        event["occurred_at"],
    ):
        assert moment.endswith("Z"), moment
