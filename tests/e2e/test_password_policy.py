"""The password rule holds wherever a password is set: a workspace's first admin (API and CLI),
a platform operator (CLI), an invitation's acceptance; and a password it accepts signs in."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from helpdesk.cli import app
from tests.support.factories import Factory, unique_slug

pytestmark = pytest.mark.e2e

API = "/api/v1"

# (password, why it is refused); "{email}" and "{local}" stand for the account's own address.
REFUSED: list[tuple[str, str]] = [
    ("password", "common"),
    ("11111111", "common"),
    ("12345678", "common"),
    ("{email}", "the account's own address"),
    ("{local}", "the address's local part"),
    ("€" * 400, "400 code points: more than 256"),
    ("e\u0301e\u0301e\u0301e\u0301", "4 characters after NFKC"),
]


def _workspace(slug: str, password: str) -> dict[str, Any]:
    email = f"First.Admin.{slug}@Example.com"
    local = email.split("@", maxsplit=1)[0]
    return {
        "slug": slug,
        "name": "Password Co",
        "admin_email": email,
        "admin_password": password.format(email=email.upper(), local=local.lower()),
    }


@pytest.mark.parametrize(("password", "why"), REFUSED)
def test_a_workspaces_first_admin_password_obeys_the_rule(
    client: TestClient, factory: Factory, password: str, why: str
) -> None:
    body = _workspace(unique_slug("pw"), password)
    operator = factory.headers(factory.operator(), None)
    response = client.post(f"{API}/platform/tenants", json=body, headers=operator)
    assert response.status_code == 422, (why, response.text)
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "admin_password"]]


@pytest.mark.parametrize("password", ["€" * 256, "ﬀﬀﬀﬀ", "a quiet tangerine harbour"])
def test_a_password_the_rule_accepts_signs_in(
    client: TestClient, factory: Factory, password: str
) -> None:
    slug = unique_slug("pw")
    body = _workspace(slug, password)
    operator = factory.headers(factory.operator(), None)
    created = client.post(f"{API}/platform/tenants", json=body, headers=operator)
    assert created.status_code == 201, created.text
    login = {"email": body["admin_email"], "password": password, "tenant": slug}
    signed_in = client.post(f"{API}/auth/login", json=login)
    assert signed_in.status_code == 200, signed_in.text


@pytest.mark.parametrize("password", ["password", "11111111", "12345678"])
def test_an_invitation_cannot_set_a_common_password(
    client: TestClient, admin: dict[str, str], password: str
) -> None:
    invited = client.post(
        f"{API}/members",
        json={"email": f"{unique_slug('inv')}@example.com", "name": "Invitee", "role": "agent"},
        headers=admin,
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["invitation_token"]
    response = client.post(
        f"{API}/auth/invitations/accept", json={"token": token, "password": password}
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "password"]]


@pytest.mark.parametrize(("password", "why"), REFUSED)
def test_the_command_line_refuses_what_the_api_refuses(
    cli: CliRunner, password: str, why: str
) -> None:
    slug = unique_slug("pw")
    body = _workspace(slug, password)
    operator_email = f"Op.{slug}@example.com"
    operator_password = password.format(email=operator_email, local=f"op.{slug}")
    commands = [
        (
            [
                "tenants",
                "create",
                slug,
                "--name",
                "x",
                "--admin-email",
                body["admin_email"],
                "--admin-password-stdin",
            ],
            body["admin_password"],
        ),
        (["operators", "create", operator_email, "--password-stdin"], operator_password),
    ]
    for arguments, typed in commands:
        result = cli.invoke(app, arguments, input=f"{typed}\n")
        assert result.exit_code == 2, (why, arguments[:2], result.output)
        assert "password" in result.output


@pytest.mark.parametrize(("password", "why"), REFUSED)
def test_a_member_added_with_a_password_obeys_the_rule(
    client: TestClient, admin: dict[str, str], password: str, why: str
) -> None:
    email = f"Member.{unique_slug('m')}@Example.com"
    local = email.split("@", maxsplit=1)[0]
    member = {
        "email": email,
        "name": "Member",
        "role": "agent",
        "password": password.format(email=email.upper(), local=local.lower()),
    }
    response = client.post(f"{API}/members", json=member, headers=admin)
    assert response.status_code == 422, (why, response.text)
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "password"]]


@pytest.mark.parametrize("part", ["email", "local"])
def test_an_invitation_cannot_set_the_members_own_address(
    client: TestClient, admin: dict[str, str], part: str
) -> None:
    email = f"{unique_slug('inv')}@example.com"
    invited = client.post(
        f"{API}/members", json={"email": email, "name": "Invitee", "role": "agent"}, headers=admin
    )
    assert invited.status_code == 201, invited.text
    password = email if part == "email" else email.split("@", maxsplit=1)[0]
    response = client.post(
        f"{API}/auth/invitations/accept",
        json={"token": invited.json()["invitation_token"], "password": password.upper()},
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "password"]]
