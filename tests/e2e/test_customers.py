"""Customers over HTTP: validation, E.164 phones, case-insensitive uniqueness."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

CUSTOMERS = "/api/v1/customers"


@pytest.fixture
def agent(factory: Factory, ws: Workspace) -> dict[str, str]:
    return factory.headers(factory.member(ws, "agent"), ws)


def test_create_normalises_the_phone_and_defaults_the_tier(
    client: TestClient, agent: dict[str, str]
) -> None:
    response = client.post(
        CUSTOMERS,
        json={
            "email": "Ann@Example.com",
            "name": "Ann",
            "phone": "+44 20 7946 0958",
            "company": "Acme",
        },
        headers=agent,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phone"] == "+442079460958"
    assert body["tier"] == "basic"
    assert set(body) == {"id", "email", "name", "company", "phone", "tier", "created_at"}
    assert (
        client.get(f"{CUSTOMERS}/{body['id']}", headers=agent).json()["email"] == "Ann@example.com"
    )  # domain normalised


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 555"}, "phone"),
        ({"tier": "gold"}, "tier"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_invalid_customers_are_422_naming_the_field(
    client: TestClient, agent: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    body = {"email": "valid@example.com", "name": "V", **fields}
    response = client.post(CUSTOMERS, json=body, headers=agent)
    assert response.status_code == 422
    assert [err["loc"][-1] for err in response.json()["detail"]] == [field]


def test_a_duplicate_email_in_any_case_is_a_409(client: TestClient, agent: dict[str, str]) -> None:
    assert (
        client.post(CUSTOMERS, json={"email": "dup@example.com"}, headers=agent).status_code == 201
    )
    again = client.post(CUSTOMERS, json={"email": "DUP@example.COM"}, headers=agent)
    assert (again.status_code, again.json()["code"]) == (409, "duplicate_email")


def test_patch_and_list(client: TestClient, agent: dict[str, str]) -> None:
    first = client.post(CUSTOMERS, json={"email": "one@example.com"}, headers=agent).json()
    client.post(CUSTOMERS, json={"email": "two@example.com"}, headers=agent)
    patched = client.patch(
        f"{CUSTOMERS}/{first['id']}",
        json={"tier": "enterprise", "phone": "+1 212 555 0123"},
        headers=agent,
    )
    assert patched.status_code == 200
    assert (patched.json()["tier"], patched.json()["phone"]) == ("enterprise", "+12125550123")
    clash = client.patch(
        f"{CUSTOMERS}/{first['id']}", json={"email": "TWO@example.com"}, headers=agent
    )
    assert clash.status_code == 409
    page = client.get(CUSTOMERS, params={"limit": 1}, headers=agent).json()
    assert len(page["items"]) == 1
    rest = client.get(CUSTOMERS, params={"cursor": page["next_cursor"]}, headers=agent).json()
    assert [c["email"] for c in page["items"] + rest["items"]] == [
        "one@example.com",
        "two@example.com",
    ]
    assert client.get(f"{CUSTOMERS}/999999", headers=agent).status_code == 404


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [("viewer", 200, 403), ("compliance", 200, 403), ("customer", 403, 403)],
)
def test_who_may_read_and_write_customers(
    client: TestClient, factory: Factory, ws: Workspace, role: str, read: int, write: int
) -> None:
    headers = factory.headers(factory.member(ws, role), ws)
    assert client.get(CUSTOMERS, headers=headers).status_code == read
    assert (
        client.post(CUSTOMERS, json={"email": "r@example.com"}, headers=headers).status_code
        == write
    )


def test_a_ticket_naming_a_new_email_creates_the_customer_once(
    client: TestClient, agent: dict[str, str]
) -> None:
    def ticket(email: str, name: str) -> dict[str, Any]:
        body = {"title": "Help", "customer_email": email, "customer_name": name}
        response = client.post("/api/v1/tickets", json=body, headers=agent)
        assert response.status_code == 201, response.text
        customer: dict[str, Any] = response.json()["customer"]
        return customer

    first = ticket("New.Person@Example.com", "New Person")
    # The same requester in another case is the same customer; the first name given stays.
    again = ticket("new.person@EXAMPLE.COM", "Someone Else")
    assert again == first
    assert first["name"] == "New Person"
    listed = client.get(CUSTOMERS, headers=agent).json()["items"]
    assert [(c["id"], c["name"], c["tier"]) for c in listed] == [
        (first["id"], "New Person", "basic")
    ]
    # An explicit create for that email now clashes with the record the ticket made.
    clash = client.post(CUSTOMERS, json={"email": "NEW.PERSON@example.com"}, headers=agent)
    assert (clash.status_code, clash.json()["code"]) == (409, "duplicate_email")
