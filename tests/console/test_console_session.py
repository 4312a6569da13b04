"""Console sign-in, its cookie, sign-out, timeouts, CSRF and the security headers: over HTTP
against the app and real PostgreSQL, no browser needed."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from helpdesk.app import create_app
from helpdesk.console.models import ConsoleSession
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.console import ORIGIN, sign_in
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e


def _signin(client: TestClient, ws: Workspace, password: str, **headers: str) -> httpx.Response:
    return client.post(
        "/app/signin",
        data={"workspace": ws.slug, "email": ws.admin.email, "password": password},
        headers={"Origin": ORIGIN, **headers},
        follow_redirects=False,
    )


def test_sign_in_sets_an_httponly_strict_cookie_scoped_to_the_console(
    client: TestClient, ws: Workspace
) -> None:
    response = _signin(client, ws, ws.admin.password)
    assert response.status_code == 303
    assert response.headers["location"] == "/app/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("helpdesk_console=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/app" in cookie
    # Development serves plain HTTP on loopback; production's cookie is Secure (next test).
    assert "Secure" not in cookie


def test_outside_development_the_session_cookie_is_secure(
    service_runtime: Runtime, ws: Workspace
) -> None:
    settings = service_runtime.settings.model_copy(update={"env": "production"})
    production = Runtime(
        settings=settings,
        database_url=service_runtime.database_url,
        engine=service_runtime.engine,
        sessions=service_runtime.sessions,
    )
    with TestClient(create_app(production), base_url="https://testserver") as client:
        response = _signin(client, ws, ws.admin.password, Origin="https://testserver")
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_the_cookie_holds_an_opaque_id_stored_only_as_its_digest(
    client: TestClient, ws: Workspace, runtime: Runtime
) -> None:
    _signin(client, ws, ws.admin.password)
    cookie = client.cookies["helpdesk_console"]
    assert cookie.count(".") == 0, "a JWT has dots; the cookie is an opaque id"
    with transaction(runtime.sessions) as session:
        stored = session.scalars(
            select(ConsoleSession.id_hash).where(ConsoleSession.user_id == ws.admin.user_id)
        ).all()
    assert len(stored) == 1
    assert stored[0] != cookie
    assert len(stored[0]) == 64


def test_a_wrong_password_shows_the_form_again_with_the_apis_sentence(
    client: TestClient, ws: Workspace
) -> None:
    response = _signin(client, ws, "not-the-password")
    assert response.status_code == 401
    assert "incorrect" in response.text
    assert "helpdesk_console" not in response.headers.get("set-cookie", "")


def test_sign_in_is_throttled_like_the_api(client: TestClient, ws: Workspace) -> None:
    # The per-account allowance is 5 free attempts; the sixth right after waits (429).
    statuses = [_signin(client, ws, "wrong-password-x").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    refused = _signin(client, ws, ws.admin.password)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "helpdesk_console" not in refused.headers.get("set-cookie", "")


def test_sign_in_from_another_origin_is_refused(client: TestClient, ws: Workspace) -> None:
    response = _signin(client, ws, ws.admin.password, Origin="https://evil.example")
    assert response.status_code == 403
    assert "csrf_failed" in response.text
    assert "set-cookie" not in response.headers


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(
    client: TestClient, ws: Workspace
) -> None:
    sign_in(client, ws, ws.admin)
    for path in ("/app/signin", "/app/tickets"):
        response = client.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "<script>" not in response.text
        assert "style=" not in response.text


def test_without_a_session_a_page_sends_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get("/app/tickets", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/app/signin"


@pytest.fixture
def signed_in(client: TestClient, factory: Factory, ws: Workspace) -> tuple[TestClient, str, int]:
    """The admin signed in, a ticket to post to, and the session's CSRF token."""
    csrf = sign_in(client, ws, ws.admin)
    headers = factory.headers(ws.admin, ws)
    ticket = client.post(
        "/api/v1/tickets",
        json={
            "title": "Printer on fire",
            "description": "smoke",
            "customer_email": "c@example.com",
        },
        headers=headers,
    ).json()
    return client, csrf, ticket["id"]


@pytest.mark.parametrize(
    ("form_token", "origin"),
    [
        pytest.param(None, ORIGIN, id="no-token"),
        pytest.param("forged", ORIGIN, id="wrong-token"),
        pytest.param("SESSION", "https://evil.example", id="right-token-other-origin"),
        pytest.param("SESSION", None, id="right-token-no-origin"),
    ],
)
def test_an_unsafe_request_without_the_sessions_token_and_origin_is_refused(
    signed_in: tuple[TestClient, str, int], form_token: str | None, origin: str | None
) -> None:
    client, csrf, ticket_id = signed_in
    data = {"body": "hello", "visibility": "public"}
    if form_token is not None:
        data["csrf_token"] = csrf if form_token == "SESSION" else form_token
    headers = {"Origin": origin} if origin else {}
    response = client.post(
        f"/app/tickets/{ticket_id}/comments", data=data, headers=headers, follow_redirects=False
    )
    assert response.status_code == 403
    assert "csrf_failed" in response.text
    thread = client.get(f"/app/tickets/{ticket_id}").text
    assert "hello" not in thread


def test_the_same_request_with_token_and_origin_goes_through(
    signed_in: tuple[TestClient, str, int],
) -> None:
    client, csrf, ticket_id = signed_in
    response = client.post(
        f"/app/tickets/{ticket_id}/comments",
        data={"body": "hello there", "visibility": "public", "csrf_token": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "hello there" in client.get(f"/app/tickets/{ticket_id}").text


def test_sign_out_ends_the_session_for_good(
    client: TestClient, ws: Workspace, runtime: Runtime
) -> None:
    csrf = sign_in(client, ws, ws.admin)
    cookie = client.cookies["helpdesk_console"]
    response = client.post(
        "/app/signout",
        data={"csrf_token": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert 'helpdesk_console=""' in response.headers["set-cookie"]
    # The old cookie, sent again by hand, opens nothing.
    client.cookies.set("helpdesk_console", cookie, path="/app")
    again = client.get("/app/tickets", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/app/signin"
    with transaction(runtime.sessions) as session:
        live = session.scalar(
            text(
                "SELECT count(*) FROM public.refresh_tokens"
                " WHERE user_id = :u AND revoked_at IS NULL"
            ),
            {"u": ws.admin.user_id},
        )
    assert live == 0, "the session family the console rode on is revoked too"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def test_a_session_idle_for_30_minutes_has_ended(
    client: TestClient, ws: Workspace, clock: time_machine.Traveller
) -> None:
    sign_in(client, ws, ws.admin)
    clock.shift(timedelta(minutes=29))
    assert client.get("/app/tickets", follow_redirects=False).status_code == 200
    clock.shift(timedelta(minutes=29))  # 29 minutes since the last request: still alive
    assert client.get("/app/tickets", follow_redirects=False).status_code == 200
    clock.shift(timedelta(minutes=31))
    assert client.get("/app/tickets", follow_redirects=False).status_code == 303


def test_a_busy_session_still_ends_12_hours_after_sign_in(
    client: TestClient, ws: Workspace, clock: time_machine.Traveller
) -> None:
    sign_in(client, ws, ws.admin)
    for _ in range(11 * 3 + 2):  # a request every 20 minutes, for 11 h 40 min
        clock.shift(timedelta(minutes=20))
        assert client.get("/app/", follow_redirects=False).headers["location"] != "/app/signin"
    clock.shift(timedelta(minutes=21))
    response = client.get("/app/tickets", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/app/signin"


def test_removing_a_member_ends_their_console_session(
    client: TestClient, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    sign_in(client, ws, agent)
    removed = client.delete(
        f"/api/v1/members/{agent.user_id}", headers=factory.headers(ws.admin, ws)
    )
    assert removed.status_code == 204
    assert client.get("/app/tickets", follow_redirects=False).status_code in (303, 401)


def test_csrf_token_is_per_session(signed_in: tuple[TestClient, str, int], ws: Workspace) -> None:
    client, first, ticket_id = signed_in
    second = sign_in(client, ws, ws.admin)  # a new session in the same browser
    assert first != second
    stale = client.post(
        f"/app/tickets/{ticket_id}/comments",
        data={"body": "with the old token", "visibility": "public", "csrf_token": first},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert stale.status_code == 403
    assert "csrf_failed" in stale.text


def test_an_unknown_console_page_is_an_html_404_and_the_api_keeps_json(
    client: TestClient,
) -> None:
    page = client.get("/app/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no such page." in page.text
    api = client.get("/api/v1/no-such-route")
    assert api.status_code == 404
    assert api.json()["code"] == "not_found"
