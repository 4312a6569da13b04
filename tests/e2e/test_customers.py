"""Customers over HTTP: validation, E.164 phones (national numbers read in the workspace's
phone region), case-insensitive uniqueness."""

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


@pytest.mark.parametrize(
    ("region", "written", "stored"),
    [
        # (the workspace's phone region, the number as sent, as stored); None: refused.
        (None, "(201) 555-0123", "+12015550123"),  # the default region is US
        (None, "201-555-0123", "+12015550123"),
        (None, "+44 20 7946 0958", "+442079460958"),  # a country code overrides the region
        (None, "020 7946 0958", None),  # a UK national number is not a US one
        ("GB", "020 7946 0958", "+442079460958"),
        ("gb", "+1 (201) 555-0123", "+12015550123"),
        ("DE", "030 123456", "+4930123456"),
        (None, "12345", None),
        (None, "call me", None),
    ],
)
def test_phone_numbers_are_read_in_the_workspaces_region_and_stored_in_e164(
    client: TestClient,
    admin: dict[str, str],
    agent: dict[str, str],
    region: str | None,
    written: str,
    stored: str | None,
) -> None:
    if region is not None:
        saved = client.put("/api/v1/settings", json={"phone_region": region}, headers=admin)
        assert (saved.status_code, saved.json()["phone_region"]) == (200, region.upper())
    body = {"email": "caller@example.com", "name": "Caller", "phone": written}
    created = client.post(CUSTOMERS, json=body, headers=agent)
    if stored is None:
        assert created.status_code == 422, created.text
        [error] = created.json()["detail"]
        assert (error["loc"], error["type"]) == (["body", "phone"], "invalid_phone")
        assert error["msg"].startswith("This is not a")
        assert "country code" in error["msg"]
        assert written not in created.text  # personal data is not echoed
        return
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == stored


def test_a_patched_phone_is_read_in_the_region_and_a_bad_one_changes_nothing(
    client: TestClient, agent: dict[str, str]
) -> None:
    created = client.post(CUSTOMERS, json={"email": "pat@example.com"}, headers=agent).json()
    url = f"{CUSTOMERS}/{created['id']}"
    patched = client.patch(url, json={"phone": "(201) 555-0123"}, headers=agent)
    assert (patched.status_code, patched.json()["phone"]) == (200, "+12015550123")
    refused = client.patch(url, json={"phone": "555", "name": "Pat"}, headers=agent)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_phone")
    shown = client.get(url, headers=agent).json()
    assert (shown["phone"], shown["name"]) == ("+12015550123", "")
    cleared = client.patch(url, json={"phone": None}, headers=agent)
    assert (cleared.status_code, cleared.json()["phone"]) == (200, None)
