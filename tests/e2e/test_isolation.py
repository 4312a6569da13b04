"""A workspace's token reaches only that workspace's rows."""

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import Factory

pytestmark = pytest.mark.e2e

API = "/api/v1"


@dataclass(frozen=True)
class Secrets:
    """B's rows, each holding the word "secret" so a leak shows in any response text."""

    headers: dict[str, str]
    ticket_id: int
    customer_id: int
    comment_id: int


def _created(
    client: TestClient, path: str, body: dict[str, object], headers: dict[str, str]
) -> int:
    response = client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: int = response.json()["id"]
    return created


def _seed_b(client: TestClient, headers: dict[str, str]) -> Secrets:
    customer = _created(
        client, "/customers", {"email": "secret@b.example.com", "name": "Secret Person"}, headers
    )
    ticket = _created(
        client,
        "/tickets",
        {"title": "secret in B", "description": "secret", "customer_email": "c@b.example.com"},
        headers,
    )
    comment = _created(
        client, f"/tickets/{ticket}/comments", {"body": "secret note", "public": True}, headers
    )
    return Secrets(headers, ticket, customer, comment)


def _b_unchanged(client: TestClient, b: Secrets) -> None:
    ticket = client.get(f"{API}/tickets/{b.ticket_id}", headers=b.headers).json()
    assert (ticket["title"], ticket["description"]) == ("secret in B", "secret")
    customer = client.get(f"{API}/customers/{b.customer_id}", headers=b.headers).json()
    assert customer["name"] == "Secret Person"
    comments = client.get(f"{API}/tickets/{b.ticket_id}/comments", headers=b.headers).json()
    assert [c["body"] for c in comments["items"]] == ["secret note"]


def test_each_workspace_lists_only_its_own_rows(client: TestClient, factory: Factory) -> None:
    a, b = factory.workspace(), factory.workspace()
    ha, hb = factory.headers(a.admin, a), factory.headers(b.admin, b)
    _created(client, "/tickets", {"title": "in A", "customer_email": "c@a.example.com"}, ha)
    _seed_b(client, hb)
    for path, field, mine in (
        ("/tickets", "title", ["in A"]),
        ("/customers", "email", ["c@a.example.com"]),
    ):
        listed = client.get(f"{API}{path}", headers=ha)
        assert listed.status_code == 200
        assert [item[field] for item in listed.json()["items"]] == mine
        assert "secret" not in listed.text.lower()
    titles_b = [t["title"] for t in client.get(f"{API}/tickets", headers=hb).json()["items"]]
    assert titles_b == ["secret in B"]


# (method, path under B's ids, body): reading, updating and deleting B's rows by id.
REACHES = [
    ("GET", "/tickets/{ticket}", None),
    ("PATCH", "/tickets/{ticket}", {"title": "stolen"}),
    ("DELETE", "/tickets/{ticket}", None),
    ("GET", "/tickets/{ticket}/comments", None),
    ("POST", "/tickets/{ticket}/comments", {"body": "planted", "public": True}),
    ("GET", "/customers/{customer}", None),
    ("PATCH", "/customers/{customer}", {"name": "Stolen"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), REACHES, ids=[f"{m} {p}" for m, p, _ in REACHES]
)
def test_another_workspaces_row_is_not_found(
    client: TestClient,
    factory: Factory,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    a, b = factory.workspace(), factory.workspace()
    secrets = _seed_b(client, factory.headers(b.admin, b))
    # A's own sequences have no row with those ids either: create none in A, so a 404 here
    # cannot be A's own row answering in B's place.
    url = f"{API}{path.format(ticket=secrets.ticket_id, customer=secrets.customer_id)}"
    response = client.request(method, url, json=body, headers=factory.headers(a.admin, a))
    assert response.status_code == 404, response.text
    assert "secret" not in response.text.lower()
    _b_unchanged(client, secrets)


@pytest.mark.parametrize(
    ("where", "name"),
    [("header", "X-Tenant"), ("header", "X-Tenant-ID"), ("query", "tenant"), ("query", "tid")],
)
def test_the_workspace_comes_from_the_token_alone(
    client: TestClient, factory: Factory, where: str, name: str
) -> None:
    a, b = factory.workspace(), factory.workspace()
    ha = factory.headers(a.admin, a)
    mine = _created(client, "/tickets", {"title": "in A", "customer_email": "c@a.example.com"}, ha)
    secrets = _seed_b(client, factory.headers(b.admin, b))
    # Each schema numbers its own tickets: the same id names A's row in A and B's row in B.
    assert mine == secrets.ticket_id
    for value in (b.slug, str(b.id)):
        headers = {**ha, name: value} if where == "header" else ha
        params = {name: value} if where == "query" else None
        listed = client.get(f"{API}/tickets", headers=headers, params=params)
        assert [t["title"] for t in listed.json()["items"]] == ["in A"]
        one = client.get(f"{API}/tickets/{mine}", headers=headers, params=params)
        assert one.json()["title"] == "in A"
