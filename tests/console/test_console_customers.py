"""The customer page's edit form over HTTP: the API's customer update and its permission."""

import html

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e


def _customer(client: TestClient, factory: Factory, ws: Workspace) -> int:
    created = client.post(
        "/api/v1/customers",
        json={"email": "carla@example.com", "name": "Carla", "company": "Acme"},
        headers=factory.headers(ws.admin, ws),
    )
    assert created.status_code == 201, created.text
    customer_id: int = created.json()["id"]
    return customer_id


def _edit(client: TestClient, csrf: str, customer_id: int, **form: str) -> httpx.Response:
    return client.post(
        f"/app/customers/{customer_id}",
        data={"name": "Carla", "tier": "basic", **form, "csrf_token": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def test_an_agent_edits_a_customers_name_phone_and_tier(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    customer_id = _customer(client, factory, ws)
    csrf = sign_in(client, ws, factory.member(ws, "agent"))
    response = _edit(
        client, csrf, customer_id, name="Carla Cruz", phone="202 555 0143", tier="premium"
    )
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "Customer saved." in page
    assert '<option value="premium" selected>' in page
    saved = client.get(
        f"/api/v1/customers/{customer_id}", headers=factory.headers(ws.admin, ws)
    ).json()
    # The phone as the API stores it (E.164 in the workspace's region); a box left empty
    # (company here) clears the field.
    assert (saved["name"], saved["phone"], saved["tier"], saved["company"]) == (
        "Carla Cruz",
        "+12025550143",
        "premium",
        None,
    )


def test_a_viewer_sees_no_edit_form_and_is_refused_the_edit(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    customer_id = _customer(client, factory, ws)
    csrf = sign_in(client, ws, factory.member(ws, "viewer"))
    page = client.get(f"/app/customers/{customer_id}").text
    assert "Carla" in page
    assert "Save customer" not in page
    response = _edit(client, csrf, customer_id, name="Mallory")
    assert response.status_code == 403
    assert "customers.write" in response.text


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"tier": "platinum"}, "tier: Input should be 'free', 'basic', 'premium' or 'enterprise'"),
        ({"phone": "not a number"}, "not a phone number"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_input_is_a_clear_refusal_not_an_error(
    client: TestClient, factory: Factory, ws: Workspace, form: dict[str, str], reason: str
) -> None:
    customer_id = _customer(client, factory, ws)
    csrf = sign_in(client, ws, ws.admin)
    response = _edit(client, csrf, customer_id, **form)
    assert response.status_code == 422
    assert reason in html.unescape(response.text)
