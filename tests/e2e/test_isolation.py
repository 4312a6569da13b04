"""A workspace's token reaches only that workspace's rows."""

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import Factory

pytestmark = pytest.mark.e2e


def _create_ticket(client: TestClient, headers: dict[str, str], title: str) -> int:
    response = client.post(
        "/api/v1/tickets", json={"title": title, "customer_email": "c@example.com"}, headers=headers
    )
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def test_each_workspace_lists_only_its_own_tickets(client: TestClient, factory: Factory) -> None:
    a, b = factory.workspace(), factory.workspace()
    ha, hb = factory.headers(a.admin, a), factory.headers(b.admin, b)
    _create_ticket(client, ha, "in A")
    _create_ticket(client, hb, "in B")
    titles_a = [t["title"] for t in client.get("/api/v1/tickets", headers=ha).json()["items"]]
    titles_b = [t["title"] for t in client.get("/api/v1/tickets", headers=hb).json()["items"]]
    assert titles_a == ["in A"]
    assert titles_b == ["in B"]


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PATCH", {"title": "stolen"}), ("DELETE", None)],
)
def test_another_workspaces_ticket_is_not_found(
    client: TestClient, factory: Factory, method: str, body: dict[str, str] | None
) -> None:
    a, b = factory.workspace(), factory.workspace()
    b_ticket = _create_ticket(client, factory.headers(b.admin, b), "secret in B")
    # A's own sequence has no row with that id either: create none in A.
    response = client.request(
        method, f"/api/v1/tickets/{b_ticket}", json=body, headers=factory.headers(a.admin, a)
    )
    assert response.status_code == 404
    assert "secret" not in response.text
    still_there = client.get(f"/api/v1/tickets/{b_ticket}", headers=factory.headers(b.admin, b))
    assert still_there.json()["title"] == "secret in B"
