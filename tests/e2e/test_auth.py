"""Sign-in, token refresh and rotation, logout, throttling and token verification."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from audit.models import PlatformAuditEvent
from auth.models import User
from auth.passwords import hash_password, use_hash_profile
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import PASSWORD, Factory, Member, Workspace

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"


def _login(client: TestClient, member: Member, workspace: Workspace | None, **extra: Any) -> Any:
    body = {"email": member.email, "password": member.password, **extra}
    if workspace is not None:
        body["tenant"] = workspace.slug
    return client.post(LOGIN, json=body)


def test_login_returns_a_token_pair_that_works(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    response = _login(client, ws.admin, ws)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == ws.admin.email
    assert me.json()["tenant"]["slug"] == ws.slug
    assert me.json()["role"] == "admin"
    assert "tickets.delete" in me.json()["permissions"]


def test_operator_logs_in_without_a_workspace(client: TestClient, factory: Factory) -> None:
    operator = factory.operator()
    response = _login(client, operator, None)
    assert response.status_code == 200
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["tenant"] is None
    assert me.json()["role"] == "operator"


def test_a_member_must_name_a_workspace(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    response = _login(client, ws.admin, None)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tenant"]


@pytest.mark.parametrize(
    "mistake",
    ["wrong-password", "unknown-email", "other-workspace", "no-such-workspace", "bad-slug"],
)
def test_failed_logins_say_incorrect(client: TestClient, factory: Factory, mistake: str) -> None:
    ws, other = factory.workspace(), factory.workspace()
    body = {"email": ws.admin.email, "password": PASSWORD, "tenant": ws.slug}
    if mistake == "wrong-password":
        body["password"] = "not-the-password"
    elif mistake == "unknown-email":
        body["email"] = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    elif mistake == "other-workspace":
        body["tenant"] = other.slug
    elif mistake == "no-such-workspace":
        body["tenant"] = "nothing_here_" + uuid.uuid4().hex[:6]
    else:
        body["tenant"] = "Bad-Slug"
    response = client.post(LOGIN, json=body)
    assert response.status_code == 401
    assert "incorrect" in response.json()["detail"]


def test_failed_logins_are_on_the_platform_trail(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    client.post(LOGIN, json={"email": ws.admin.email, "password": "wrong-one!", "tenant": ws.slug})
    _login(client, ws.admin, ws)
    with transaction(runtime.sessions) as session:
        events = session.scalars(
            select(PlatformAuditEvent)
            .where(PlatformAuditEvent.actor_email == ws.admin.email)
            .order_by(PlatformAuditEvent.id)
        ).all()
        assert [(e.action, e.outcome) for e in events] == [
            ("auth.login_failed", "denied"),
            ("auth.login", "success"),
        ]
        assert "password" not in str(events[0].details)


def test_repeated_failures_are_throttled_per_account(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    limit = runtime.settings.login_attempts_per_account
    for _ in range(limit):
        bad = {"email": ws.admin.email, "password": "wrong-password", "tenant": ws.slug}
        assert client.post(LOGIN, json=bad).status_code == 401
    blocked = _login(client, ws.admin, ws)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1


def test_repeated_failures_are_throttled_per_address(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    address = f"10.{uuid.uuid4().int % 250}.0.1"
    with transaction(runtime.sessions) as session:
        for _ in range(runtime.settings.login_attempts_per_address):
            session.execute(
                text("INSERT INTO public.login_failures (email, address) VALUES (:e, :a)"),
                {"e": f"{uuid.uuid4().hex}@example.com", "a": address},
            )
    from auth.throttle import check_login_allowed
    from helpdesk.core.errors import RateLimited

    with transaction(runtime.sessions) as session, pytest.raises(RateLimited):
        check_login_allowed(session, runtime.settings, "fresh@example.com", address)


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    first = _login(client, ws.admin, ws).json()["refresh_token"]
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200
    second_token = second.json()["refresh_token"]
    assert second_token != first
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    # The thief replayed `first`; the owner's newer token dies with the family.
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": second_token})
    assert after.status_code == 401


def test_logout_revokes_the_refresh_token(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    pair = _login(client, ws.admin, ws).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    out = client.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=headers
    )
    assert out.status_code == 204
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401


def test_a_hash_with_old_parameters_is_upgraded_at_login(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    use_hash_profile("strong")
    try:
        strong_hash = hash_password(PASSWORD)
    finally:
        use_hash_profile(runtime.settings.password_hash_profile)
    with transaction(runtime.sessions) as session:
        user = session.get(User, ws.admin.user_id)
        assert user is not None
        user.password_hash = strong_hash
    assert _login(client, ws.admin, ws).status_code == 200
    with transaction(runtime.sessions) as session:
        upgraded = session.get(User, ws.admin.user_id)
        assert upgraded is not None
        assert upgraded.password_hash != strong_hash
        assert upgraded.password_hash is not None
        assert "m=1024" in upgraded.password_hash


def _claims(runtime: Runtime, member: Member, ws: Workspace, **override: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": runtime.settings.jwt_issuer,
        "aud": runtime.settings.jwt_audience,
        "sub": str(member.user_id),
        "tid": str(ws.id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(runtime: Runtime, claims: dict[str, Any], **kwargs: Any) -> str:
    return jwt.encode(
        claims, runtime.settings.signing_key, algorithm="HS256", headers={"kid": "dev"}, **kwargs
    )


def _tampered_tid(token: str, new_tid: str) -> str:
    import base64
    import json

    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["tid"] = new_tid
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "malformed",
        "alg-none",
        "wrong-audience",
        "wrong-issuer",
        "edited-tid",
        "missing-exp",
        "unknown-kid",
        "wrong-key",
        "no-token",
    ],
)
def test_bad_tokens_are_401(
    client: TestClient, factory: Factory, runtime: Runtime, case: str
) -> None:
    ws, other = factory.workspace(), factory.workspace()
    member = ws.admin
    token: str | None
    if case == "expired":
        past = datetime.now(UTC) - timedelta(hours=1)
        token = _sign(
            runtime, _claims(runtime, member, ws, iat=past, exp=past + timedelta(minutes=1))
        )
    elif case == "malformed":
        token = "not.a.jwt"
    elif case == "alg-none":
        token = jwt.encode(_claims(runtime, member, ws), None, algorithm="none")
    elif case == "wrong-audience":
        token = _sign(runtime, _claims(runtime, member, ws, aud="someone-else"))
    elif case == "wrong-issuer":
        token = _sign(runtime, _claims(runtime, member, ws, iss="evil"))
    elif case == "edited-tid":
        token = _tampered_tid(factory.token(member, ws), str(other.id))
    elif case == "missing-exp":
        claims = _claims(runtime, member, ws)
        del claims["exp"]
        token = _sign(runtime, claims)
    elif case == "unknown-kid":
        token = jwt.encode(
            _claims(runtime, member, ws),
            runtime.settings.signing_key,
            algorithm="HS256",
            headers={"kid": "old"},
        )
    elif case == "wrong-key":
        token = jwt.encode(
            _claims(runtime, member, ws), "x" * 40, algorithm="HS256", headers={"kid": "dev"}
        )
    else:
        token = None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 401, response.text
    if case == "expired":
        assert "expired" in response.json()["detail"]


def test_suspended_workspace_answers_403(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    headers = factory.headers(ws.admin, ws)
    with transaction(runtime.sessions) as session:
        session.execute(
            text("UPDATE public.tenants SET status = 'suspended' WHERE id = :id"), {"id": ws.id}
        )
    response = client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"


def test_removed_member_is_refused_at_once(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    agent = factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    with transaction(runtime.sessions) as session:
        session.execute(
            text("DELETE FROM public.memberships WHERE user_id = :u AND tenant_id = :t"),
            {"u": agent.user_id, "t": ws.id},
        )
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401


def test_demoted_member_loses_the_permission_on_the_next_request(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    agent = factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    assert (
        client.post(
            "/api/v1/tickets",
            json={"title": "ok", "customer_email": "c@example.com"},
            headers=headers,
        ).status_code
        == 201
    )
    with transaction(runtime.sessions) as session:
        session.execute(
            text(
                "UPDATE public.memberships SET role = 'viewer'"
                " WHERE user_id = :u AND tenant_id = :t"
            ),
            {"u": agent.user_id, "t": ws.id},
        )
    refused = client.post(
        "/api/v1/tickets", json={"title": "no", "customer_email": "c@example.com"}, headers=headers
    )
    assert refused.status_code == 403
    assert "permission" in refused.json()["detail"]
