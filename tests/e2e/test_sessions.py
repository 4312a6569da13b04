"""Sessions end: logout, a spent refresh token's reuse and removal from the workspace refuse the
session's access token on the next request; a disabled or demoted operator is refused too."""

import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from audit.models import PlatformAuditEvent
from auth.tokens import issue_access_token
from helpdesk.cli.main import app as cli_app
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import PASSWORD, Factory, Member, Workspace

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
MEMBERS = "/api/v1/members"


def _sign_in(client: TestClient, member: Member, workspace: Workspace | None) -> dict[str, Any]:
    body = {"email": member.email, "password": member.password}
    if workspace is not None:
        body["tenant"] = workspace.slug
    response = client.post(LOGIN, json=body)
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def test_logout_refuses_the_access_token_on_the_next_request(
    client: TestClient, factory: Factory
) -> None:
    ws = factory.workspace()
    pair = _sign_in(client, ws.admin, ws)
    other = _sign_in(client, ws.admin, ws)  # a second session of the same person
    assert client.get("/api/v1/tickets", headers=_bearer(pair)).status_code == 200
    out = client.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=_bearer(pair)
    )
    assert out.status_code == 204
    refused = client.get("/api/v1/tickets", headers=_bearer(pair))
    assert refused.status_code == 401
    assert "session" in refused.json()["detail"]
    assert client.get(ME, headers=_bearer(pair)).status_code == 401
    # Only that session ended.
    assert client.get(ME, headers=_bearer(other)).status_code == 200


def test_an_operators_logout_ends_their_session_too(client: TestClient, factory: Factory) -> None:
    operator = factory.operator()
    pair = _sign_in(client, operator, None)
    assert client.get("/api/v1/platform/tenants", headers=_bearer(pair)).status_code == 200
    client.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=_bearer(pair)
    )
    assert client.get("/api/v1/platform/tenants", headers=_bearer(pair)).status_code == 401


def test_reusing_a_spent_refresh_token_ends_the_sessions_access_tokens(
    client: TestClient, factory: Factory
) -> None:
    ws = factory.workspace()
    first = _sign_in(client, ws.admin, ws)
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert client.get(ME, headers=_bearer(second.json())).status_code == 200
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    for pair in (first, second.json()):
        assert client.get(ME, headers=_bearer(pair)).status_code == 401


def test_a_removed_member_stays_signed_out_when_added_again(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    agent = factory.member(ws, "agent")
    pair = _sign_in(client, agent, ws)
    assert client.delete(f"{MEMBERS}/{agent.user_id}", headers=admin).status_code == 204
    assert client.get(ME, headers=_bearer(pair)).status_code == 401
    again = {"email": agent.email, "name": "Agent", "role": "agent", "password": agent.password}
    assert client.post(MEMBERS, json=again, headers=admin).status_code == 201
    # Neither the old access token nor the old refresh token comes back to life.
    assert client.get(ME, headers=_bearer(pair)).status_code == 401
    revived = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert revived.status_code == 401
    # Signing in again starts a new session that works.
    assert client.get(ME, headers=_bearer(_sign_in(client, agent, ws))).status_code == 200


def test_a_token_that_names_no_session_or_someone_elses_is_refused(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    agent = factory.member(ws, "agent")
    theirs = _sign_in(client, ws.admin, ws)
    claims = jwt.decode(theirs["access_token"], options={"verify_signature": False})
    for session_id in (None, uuid.uuid4(), uuid.UUID(claims["sid"])):
        token, _ = issue_access_token(runtime.settings, agent.user_id, ws.id, session_id)
        refused = client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, session_id


Change = Callable[[CliRunner, Runtime, Member], None]


def _disable_with_the_cli(cli: CliRunner, runtime: Runtime, operator: Member) -> None:
    result = cli.invoke(cli_app, ["operators", "disable", operator.email])
    assert result.exit_code == 0, result.output
    assert "disabled" in result.output


def _demote_in_the_database(cli: CliRunner, runtime: Runtime, operator: Member) -> None:
    with transaction(runtime.sessions) as session:
        session.execute(
            text("UPDATE public.users SET is_operator = false WHERE id = :u"),
            {"u": operator.user_id},
        )


@pytest.mark.parametrize("change", [_disable_with_the_cli, _demote_in_the_database])
def test_a_disabled_or_demoted_operator_is_refused_on_the_next_request(
    client: TestClient, factory: Factory, runtime: Runtime, cli: CliRunner, change: Change
) -> None:
    operator = factory.operator()
    headers = factory.headers(operator, None)
    assert client.get("/api/v1/platform/tenants", headers=headers).status_code == 200
    change(cli, runtime, operator)
    refused = client.get("/api/v1/platform/tenants", headers=headers)
    assert refused.status_code == 401
    assert "operator" in refused.json()["detail"]
    assert client.get(ME, headers=headers).status_code == 401


def test_operators_disable_and_enable_are_on_the_platform_trail(
    client: TestClient, factory: Factory, runtime: Runtime, cli: CliRunner
) -> None:
    operator = factory.operator()
    before = _sign_in(client, operator, None)
    assert cli.invoke(cli_app, ["operators", "disable", operator.email]).exit_code == 0
    refused = client.post(LOGIN, json={"email": operator.email, "password": PASSWORD})
    assert refused.status_code == 401
    enabled = cli.invoke(cli_app, ["operators", "enable", operator.email])
    assert enabled.exit_code == 0, enabled.output
    # Enabling again lets them sign in anew; the sessions the disabling ended stay ended.
    assert client.get(ME, headers=_bearer(_sign_in(client, operator, None))).status_code == 200
    assert client.get(ME, headers=_bearer(before)).status_code == 401
    with transaction(runtime.sessions) as session:
        actions = session.scalars(
            select(PlatformAuditEvent.action)
            .where(PlatformAuditEvent.target_id == str(operator.user_id))
            .order_by(PlatformAuditEvent.id)
        ).all()
    assert actions == ["operator.disable", "operator.enable"]


def test_disabling_someone_who_is_not_an_operator_fails(
    factory: Factory, cli: CliRunner, ws: Workspace
) -> None:
    for email in (ws.admin.email, f"nobody-{uuid.uuid4().hex[:6]}@example.com"):
        result = cli.invoke(cli_app, ["operators", "disable", email])
        assert result.exit_code == 1
        assert "no operator" in result.output
