"""Routing over HTTP: members' skills and seniority set on the routing page through the members
service, and the lowest priority auto-assignment takes set on the settings page."""

import html

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e


def _routing(
    client: TestClient, factory: Factory, ws: Workspace, member: Member
) -> tuple[list[str], bool]:
    """The member's skills and seniority, as the API shows them."""
    listed = client.get("/api/v1/members", headers=factory.headers(ws.admin, ws)).json()
    found = next(m for m in listed["items"] if m["email"] == member.email)
    return found["skills"], found["senior"]


def _set_routing(client: TestClient, csrf: str, member: Member, **form: str) -> httpx.Response:
    return client.post(
        f"/app/members/{member.user_id}/routing",
        data={**form, "csrf_token": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def test_an_admin_sets_a_members_skills_and_seniority(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    csrf = sign_in(client, ws, ws.admin)
    response = _set_routing(client, csrf, agent, skills=" Billing, vpn ,,", senior="on")
    assert response.status_code == 303
    assert _routing(client, factory, ws, agent) == (["billing", "vpn"], True)
    page = client.get(response.headers["location"]).text
    assert "Routing saved." in page
    assert 'value="billing, vpn"' in page

    # The box left unticked and the list emptied take both back.
    _set_routing(client, csrf, agent, skills="")
    assert _routing(client, factory, ws, agent) == ([], False)


def test_a_manager_cannot_reroute_a_member_beyond_its_own_permissions(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    created = client.post(
        "/api/v1/roles",
        json={"name": "people", "permissions": ["members.manage", "tickets.read"]},
        headers=factory.headers(ws.admin, ws),
    )
    assert created.status_code == 201, created.text
    csrf = sign_in(client, ws, factory.member(ws, "people"))
    response = _set_routing(client, csrf, ws.admin, skills="vpn", senior="on")
    assert response.status_code == 403
    assert "permission" in response.text
    assert _routing(client, factory, ws, ws.admin) == ([], False)


def test_a_skill_too_long_is_refused_with_the_reason(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    csrf = sign_in(client, ws, ws.admin)
    response = _set_routing(client, csrf, agent, skills="x" * 65)
    assert response.status_code == 422
    assert "skills: a skill holds at most 64 characters" in html.unescape(response.text)


def test_an_unknown_member_is_not_found(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    stranger = factory.member(factory.workspace(), "agent")
    csrf = sign_in(client, ws, ws.admin)
    response = _set_routing(client, csrf, stranger, skills="vpn")
    assert response.status_code == 404


SETTINGS_FORM = {
    "timezone": "UTC",
    "business_start": "09:00",
    "business_end": "17:00",
    "day_1": "on",
    "auto_assign": "on",
    "auto_close_days": "0",
}


def test_the_settings_page_sets_the_lowest_priority_auto_assignment_takes(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    csrf = sign_in(client, ws, ws.admin)
    response = client.post(
        "/app/settings",
        data={**SETTINGS_FORM, "auto_assign_min_priority": "high", "csrf_token": csrf},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    assert '<option value="high" selected>' in response.text
    saved = client.get("/api/v1/settings", headers=factory.headers(ws.admin, ws)).json()
    assert saved["auto_assign"] is True
    assert saved["auto_assign_min_priority"] == "high"

    refused = client.post(
        "/app/settings",
        data={**SETTINGS_FORM, "auto_assign_min_priority": "urgent", "csrf_token": csrf},
        headers={"Origin": ORIGIN},
    )
    assert refused.status_code == 422
    assert "auto_assign_min_priority: Input should be" in html.unescape(refused.text)
