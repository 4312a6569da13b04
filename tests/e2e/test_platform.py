"""Workspace lifecycle through /platform/tenants, as the platform operator."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from audit.models import PlatformAuditEvent
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tenants.slugs import SLUG_RULE
from tests.support.factories import Factory, unique_slug

pytestmark = pytest.mark.e2e

TENANTS = "/api/v1/platform/tenants"


@pytest.fixture
def operator_headers(factory: Factory) -> dict[str, str]:
    return factory.headers(factory.operator(), None)


def _new(slug: str) -> dict[str, str]:
    return {
        "slug": slug,
        "name": "Acme Support",
        "admin_email": f"admin.{slug}@example.com",
        "admin_password": "long-enough-secret",
    }


def test_operator_creates_a_workspace_whose_admin_can_sign_in(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    slug = unique_slug("acme")
    response = client.post(TENANTS, json=_new(slug), headers=operator_headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "slug", "name", "status", "created_at"}
    assert (body["slug"], body["status"]) == (slug, "active")
    login = client.post(
        "/api/v1/auth/login",
        json={
            "email": f"admin.{slug}@example.com",
            "password": "long-enough-secret",
            "tenant": slug,
        },
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    "slug",
    [
        "ab",
        "Acme",
        "1acme",
        "pg_acme",
        "acme-support",
        pytest.param("a" * 41, id="41_chars"),
    ],
)
def test_a_bad_slug_is_a_422_that_states_the_rule(
    client: TestClient, operator_headers: dict[str, str], slug: str
) -> None:
    response = client.post(TENANTS, json=_new(slug), headers=operator_headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "slug"]
    assert SLUG_RULE in error["msg"]
    assert client.get(f"{TENANTS}/{slug}", headers=operator_headers).status_code == 404


def test_a_taken_slug_is_a_409(client: TestClient, operator_headers: dict[str, str]) -> None:
    slug = unique_slug()
    assert client.post(TENANTS, json=_new(slug), headers=operator_headers).status_code == 201
    again = client.post(TENANTS, json=_new(slug), headers=operator_headers)
    assert again.status_code == 409
    assert again.json()["code"] == "slug_taken"


def test_list_pages_by_cursor_and_get_one(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    prefix = unique_slug("list")
    for n in range(3):
        client.post(TENANTS, json=_new(f"{prefix}_{n}"), headers=operator_headers)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(TENANTS, params=params, headers=operator_headers).json()
        seen.extend(item["slug"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [s for s in seen if s.startswith(prefix)]
    assert mine == [f"{prefix}_{n}" for n in range(3)]
    assert len(seen) == len(set(seen))
    one = client.get(f"{TENANTS}/{prefix}_1", headers=operator_headers)
    assert one.json()["slug"] == f"{prefix}_1"
    assert client.get(f"{TENANTS}/nope_{prefix}", headers=operator_headers).status_code == 404


def test_suspend_resume_rename_and_delete_are_audited(
    client: TestClient, factory: Factory, runtime: Runtime, operator_headers: dict[str, str]
) -> None:
    ws = factory.workspace()
    member_headers = factory.headers(ws.admin, ws)
    url = f"{TENANTS}/{ws.slug}"

    suspended = client.patch(url, json={"status": "suspended"}, headers=operator_headers)
    assert suspended.json()["status"] == "suspended"
    blocked = client.get("/api/v1/tickets", headers=member_headers)
    assert (blocked.status_code, blocked.json()["code"]) == (403, "tenant_suspended")

    resumed = client.patch(
        url, json={"status": "active", "name": "Renamed"}, headers=operator_headers
    )
    assert (resumed.json()["status"], resumed.json()["name"]) == ("active", "Renamed")
    assert client.get("/api/v1/tickets", headers=member_headers).status_code == 200

    deleted = client.delete(url, headers=operator_headers)
    assert (deleted.status_code, deleted.json()["status"]) == (202, "deleting")
    assert client.get("/api/v1/tickets", headers=member_headers).status_code == 403
    frozen = client.patch(url, json={"status": "active"}, headers=operator_headers)
    assert frozen.status_code == 409

    with transaction(runtime.sessions) as session:
        actions = session.scalars(
            select(PlatformAuditEvent.action)
            .where(PlatformAuditEvent.tenant_id == ws.id)
            .order_by(PlatformAuditEvent.id)
        ).all()
    # A member's request to the suspended, then deleting, workspace is refused before the
    # workspace is entered, so the refusal is on the platform trail.
    assert actions == [
        "tenant.create",
        "tenant.suspend",
        "access.denied",
        "tenant.rename",
        "tenant.resume",
        "tenant.delete",
        "access.denied",
    ]


def test_members_cannot_manage_workspaces(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    response = client.get(TENANTS, headers=factory.headers(ws.admin, ws))
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]


def test_the_operator_cannot_read_a_workspaces_tickets(
    client: TestClient, operator_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/tickets", headers=operator_headers)
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]
