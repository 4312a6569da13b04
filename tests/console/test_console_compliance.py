"""Compliance pages over HTTP: audit log filters and paging, export download, erasure's typed
confirmation, retention's dry run and real run."""

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

EVENT_ROW = re.compile(r"<tr><td>(\d+)</td>")


def _officer(client: TestClient, factory: Factory, ws: Workspace) -> str:
    return sign_in(client, ws, factory.member(ws, "compliance"))


def test_the_audit_log_filters_and_pages(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    ticket = client.post(
        "/api/v1/tickets", json={"title": "t", "customer_email": "c@example.com"}, headers=headers
    ).json()["id"]
    for _ in range(55):
        client.get(f"/api/v1/tickets/{ticket}", headers=headers)
    _officer(client, factory, ws)
    first = client.get("/app/audit", params={"action": "ticket.read"}).text
    ids = EVENT_ROW.findall(first)
    assert len(ids) == 50
    assert "<code>ticket.create</code>" not in first
    link = re.search(r'href="(/app/audit\?cursor=[^"]+)" rel="next"', first)
    assert link
    assert "action=ticket.read" in link.group(1)
    second = client.get(link.group(1).replace("&amp;", "&")).text
    rest = EVENT_ROW.findall(second)
    assert len(rest) == 5
    assert not set(ids) & set(rest)


def test_the_export_downloads_as_a_file_naming_the_chain_head(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    _officer(client, factory, ws)
    response = client.get("/app/audit/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    head = response.headers["x-audit-chain-head"]
    assert re.fullmatch(r"[0-9a-f]{64}", head)
    assert head in response.text


def test_erasure_needs_the_typed_confirmation(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    client.post(
        "/api/v1/tickets",
        json={"title": "t", "customer_email": "erin@example.com", "customer_name": "Erin"},
        headers=headers,
    )
    csrf = _officer(client, factory, ws)

    def erase(confirmation: str) -> str:
        response = client.post(
            "/app/gdpr/erase",
            data={"email": "erin@example.com", "confirmation": confirmation, "csrf_token": csrf},
            headers={"Origin": ORIGIN},
        )
        return f"{response.status_code} {response.text}"

    assert erase("erase someone@else.com").startswith("422")
    customers = client.get("/api/v1/customers", headers=headers).json()["items"]
    assert [c["name"] for c in customers] == ["Erin"], "nothing was erased"
    assert "1 customer record(s), 1 ticket(s)" in erase("ERASE erin@example.com")
    customers = client.get("/api/v1/customers", headers=headers).json()["items"]
    assert customers[0]["name"] != "Erin"


def test_retention_shows_a_dry_run_before_offering_the_real_run(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    csrf = _officer(client, factory, ws)
    assert "Run for real" not in client.get("/app/retention").text

    def post(path: str, **data: str) -> str:
        response = client.post(path, data={**data, "csrf_token": csrf}, headers={"Origin": ORIGIN})
        assert response.status_code == 200, response.text
        return response.text

    saved = post("/app/retention/policy", closed_ticket_days="30", audit_event_days="")
    assert "Policy saved." in saved
    assert "30 days" in saved
    dry = post("/app/retention/run", mode="dry_run")
    assert "Dry run: would remove" in dry
    assert "Run for real" in dry
    real = post("/app/retention/run", mode="run")
    assert "Removed" in real
    assert "Run for real" not in real
