"""Invitation and password-reset e-mails: single-use, expiring links through the outbox."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from helpdesk.core.db import tenant_transaction
from helpdesk.outbox.models import OutboxMessage
from helpdesk.runtime import Runtime
from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

LINK = re.compile(r"(http://testserver/app/invitations/accept\?token=[\w-]+)")


def _mails(runtime: Runtime, ws: Workspace, to: str) -> list[OutboxMessage]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "email", OutboxMessage.recipient == to)
            .order_by(OutboxMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)


def _forgot(client: TestClient, ws: Workspace, email: str) -> str:
    response = client.post(
        "/app/password/forgot",
        data={"workspace": ws.slug, "email": email},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    return response.text


def _link(mail: OutboxMessage) -> str:
    found = LINK.search(mail.payload["body"])
    assert found, mail.payload
    return found.group(1).removeprefix("http://testserver")


def _set_password(client: TestClient, link: str, password: str) -> int:
    token = link.split("token=")[1]
    response = client.post(
        "/app/invitations/accept",
        data={"token": token, "password": password},
        headers={"Origin": ORIGIN},
    )
    return response.status_code


def _signs_in(client: TestClient, ws: Workspace, member: Member, password: str) -> bool:
    response = client.post(
        "/app/signin",
        data={"workspace": ws.slug, "email": member.email, "password": password},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    return response.status_code == 303


def test_a_reset_link_is_mailed_works_once_and_sets_the_new_password(
    client: TestClient, factory: Factory, ws: Workspace, runtime: Runtime
) -> None:
    agent = factory.member(ws, "agent")
    page = _forgot(client, ws, agent.email)
    assert "a link to choose a new password is on its way" in page
    (mail,) = _mails(runtime, ws, agent.email)
    assert mail.payload["subject"] == "Reset your Helpdesk password"
    link = _link(mail)
    assert client.get(link).status_code == 200

    assert _set_password(client, link, "a brand new passphrase") == 200
    assert _signs_in(client, ws, agent, "a brand new passphrase")
    assert not _signs_in(client, ws, agent, agent.password)
    assert _set_password(client, link, "another new passphrase") == 401, "single use"


def test_an_unknown_address_gets_the_same_page_and_no_mail(
    client: TestClient, ws: Workspace, runtime: Runtime
) -> None:
    page = _forgot(client, ws, "stranger@example.com")
    assert "a link to choose a new password is on its way" in page
    assert _mails(runtime, ws, "stranger@example.com") == []


def test_a_second_request_within_minutes_sends_no_second_mail(
    client: TestClient, factory: Factory, ws: Workspace, runtime: Runtime
) -> None:
    agent = factory.member(ws, "agent")
    _forgot(client, ws, agent.email)
    _forgot(client, ws, agent.email)
    assert len(_mails(runtime, ws, agent.email)) == 1


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def test_a_reset_link_expires_after_an_hour(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    runtime: Runtime,
    clock: time_machine.Traveller,
) -> None:
    agent = factory.member(ws, "agent")
    _forgot(client, ws, agent.email)
    (mail,) = _mails(runtime, ws, agent.email)
    clock.shift(timedelta(minutes=61))
    assert _set_password(client, _link(mail), "a brand new passphrase") == 401
    # A new request is allowed by then, and its link works.
    _forgot(client, ws, agent.email)
    newest = _mails(runtime, ws, agent.email)[-1]
    assert _set_password(client, _link(newest), "a brand new passphrase") == 200


def test_an_invitation_is_mailed_with_its_link(
    client: TestClient, ws: Workspace, runtime: Runtime
) -> None:
    csrf = sign_in(client, ws, ws.admin)
    response = client.post(
        "/app/members",
        data={"email": "nora@example.com", "name": "Nora", "role": "agent", "csrf_token": csrf},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    (mail,) = _mails(runtime, ws, "nora@example.com")
    assert mail.event == "member.invited"
    link = _link(mail)
    assert link in response.text.replace("&amp;", "&")
    assert _set_password(client, link, "nora's own passphrase") == 200


def test_setting_a_password_from_a_reset_link_signs_the_old_sessions_out(
    client: TestClient, factory: Factory, ws: Workspace, runtime: Runtime
) -> None:
    agent = factory.member(ws, "agent")
    sign_in(client, ws, agent)
    api_headers = factory.headers(agent, ws)
    assert client.get("/api/v1/auth/me", headers=api_headers).status_code == 200
    _forgot(client, ws, agent.email)
    (mail,) = _mails(runtime, ws, agent.email)
    assert _set_password(client, _link(mail), "a brand new passphrase") == 200
    response = client.get("/app/tickets", follow_redirects=False)
    assert response.headers["location"] == "/app/signin"
    assert client.get("/api/v1/auth/me", headers=api_headers).status_code == 401
