"""Identities belong to one workspace, tried against a served app as an attacker would.

Workspace A's admin prepares an address that a future workspace G will use for its first admin:
with a password of A's choosing, or with an invitation A keeps. Neither may open G: the operator's
password signs in to G, and what A did stays in A. Adding an address that another workspace
holds reveals nothing of that workspace's person and makes no one else a member.
"""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Member, Workspace, unique_slug
from tests.support.live_server import LiveServer, served_for_sign_in

pytestmark = pytest.mark.e2e

API = "/api/v1"
ATTACKER_PASSWORD = "attacker-chose-this-one"
OPERATOR_PASSWORD = "operator-gave-this-one"


@pytest.fixture
def served(runtime: Runtime, database_url: str) -> Iterator[LiveServer]:
    with served_for_sign_in(runtime.settings, database_url) as server:
        yield server


@pytest.fixture
def http(served: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url + API, timeout=30) as client:
        yield client


def _sign_in(http: httpx.Client, email: str, password: str, tenant: str) -> httpx.Response:
    return http.post("/auth/login", json={"email": email, "password": password, "tenant": tenant})


def _bearer(http: httpx.Client, member: Member, workspace: Workspace) -> dict[str, str]:
    response = _sign_in(http, member.email, member.password, workspace.slug)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _operator_creates_workspace(
    http: httpx.Client, factory: Factory, admin_email: str
) -> dict[str, Any]:
    operator = factory.operator()
    signed_in = http.post(
        "/auth/login", json={"email": operator.email, "password": operator.password}
    )
    assert signed_in.status_code == 200, signed_in.text
    slug = unique_slug("gamma")
    created = http.post(
        "/platform/tenants",
        json={
            "slug": slug,
            "name": "Gamma Corp",
            "admin_email": admin_email,
            "admin_password": OPERATOR_PASSWORD,
        },
        headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"},
    )
    assert created.status_code == 201, created.text
    return {"slug": slug}


def _ceo() -> str:
    return f"ceo-{uuid.uuid4().hex[:8]}@gamma-corp.example"


def test_a_password_set_in_one_workspace_does_not_open_a_workspace_created_later(
    http: httpx.Client, factory: Factory
) -> None:
    a = factory.workspace()
    ceo = _ceo()
    added = http.post(
        "/members",
        json={"email": ceo, "name": "Planted", "role": "agent", "password": ATTACKER_PASSWORD},
        headers=_bearer(http, a.admin, a),
    )
    assert added.status_code == 201, added.text
    g = _operator_creates_workspace(http, factory, ceo)

    assert _sign_in(http, ceo, ATTACKER_PASSWORD, g["slug"]).status_code == 401
    admin = _sign_in(http, ceo, OPERATOR_PASSWORD, g["slug"])
    assert admin.status_code == 200, admin.text
    me = http.get("/auth/me", headers={"Authorization": f"Bearer {admin.json()['access_token']}"})
    assert me.json()["role"] == "admin"
    assert me.json()["user"]["name"] != "Planted"
    # A's planted member is A's alone, and A's password for it stays A's.
    assert _sign_in(http, ceo, ATTACKER_PASSWORD, a.slug).status_code == 200
    assert _sign_in(http, ceo, OPERATOR_PASSWORD, a.slug).status_code == 401


def test_an_invitation_kept_after_the_removal_sets_no_password_anywhere(
    http: httpx.Client, factory: Factory
) -> None:
    a = factory.workspace()
    headers = _bearer(http, a.admin, a)
    ceo = _ceo()
    invited = http.post(
        "/members", json={"email": ceo, "name": "Invited", "role": "agent"}, headers=headers
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["invitation_token"]
    assert token
    removed = http.delete(f"/members/{invited.json()['user_id']}", headers=headers)
    assert removed.status_code == 204
    g = _operator_creates_workspace(http, factory, ceo)

    accepted = http.post(
        "/auth/invitations/accept", json={"token": token, "password": ATTACKER_PASSWORD}
    )
    assert accepted.status_code == 401
    assert _sign_in(http, ceo, ATTACKER_PASSWORD, g["slug"]).status_code == 401
    assert _sign_in(http, ceo, ATTACKER_PASSWORD, a.slug).status_code == 401
    assert _sign_in(http, ceo, OPERATOR_PASSWORD, g["slug"]).status_code == 200


def test_adding_an_address_another_workspace_holds_reveals_and_joins_no_one(
    http: httpx.Client, factory: Factory
) -> None:
    a, b = factory.workspace(), factory.workspace()
    theirs = factory.member(b, "agent")
    added = http.post(
        "/members",
        json={"email": theirs.email, "name": "Chosen by A", "role": "agent"},
        headers=_bearer(http, a.admin, a),
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["name"] == "Chosen by A"
    assert body["user_id"] != str(theirs.user_id)
    assert body["invitation_token"]
    # B's person did not become a member of A: their password opens B only.
    assert _sign_in(http, theirs.email, theirs.password, a.slug).status_code == 401
    assert _sign_in(http, theirs.email, theirs.password, b.slug).status_code == 200
    members_of_b = http.get("/members", headers=_bearer(http, b.admin, b)).json()["items"]
    assert [m["name"] for m in members_of_b if m["email"] == theirs.email] == ["agent user"]


def test_a_member_token_of_one_workspace_cannot_reach_another_workspaces_member(
    http: httpx.Client, factory: Factory
) -> None:
    a, b = factory.workspace(), factory.workspace()
    theirs = factory.member(b, "agent")
    headers = _bearer(http, a.admin, a)
    patched = http.patch(f"/members/{theirs.user_id}", json={"role": "admin"}, headers=headers)
    assert patched.status_code == 404
    assert http.delete(f"/members/{theirs.user_id}", headers=headers).status_code == 404
    assert _sign_in(http, theirs.email, theirs.password, b.slug).status_code == 200


def test_parallel_adds_of_one_address_make_one_member_and_conflicts(
    http: httpx.Client, served: LiveServer, factory: Factory
) -> None:
    a = factory.workspace()
    headers = _bearer(http, a.admin, a)
    body = {"email": _ceo(), "name": "Twin", "role": "agent"}

    def add(_: int) -> int:
        with httpx.Client(base_url=served.base_url + API, timeout=30) as client:
            return client.post("/members", json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(add, range(8)))
    assert statuses == [201] + [409] * 7
