"""Sign-in, token refresh and rotation, logout, throttling and token verification."""

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from audit.models import PlatformAuditEvent
from auth.models import Member as MemberRow
from auth.models import RefreshToken
from auth.passwords import hash_password, use_hash_profile
from auth.refresh_tokens import start_session
from auth.throttle import account_key, address_key
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import PASSWORD, Factory, Member, Workspace

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"

ClientFrom = Callable[[str], TestClient]


def _new_address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture
def client_from(app: FastAPI) -> Iterator[ClientFrom]:
    """Clients calling from a client address of their own.

    Failed logins are counted per address, and every plain ``client`` calls from the same one:
    a throttling test on that shared address would depend on what other tests failed before it.
    """
    with ExitStack() as stack:

        def make(address: str) -> TestClient:
            return stack.enter_context(
                TestClient(app, base_url="http://testserver", client=(address, 50000))
            )

        yield make


@pytest.fixture
def remote(client_from: ClientFrom) -> TestClient:
    return client_from(_new_address())


def _identity(session: Session, ws: Workspace) -> MemberRow:
    member = session.get(
        MemberRow, (ws.id, ws.admin.user_id), options=[undefer(MemberRow.password_hash)]
    )
    assert member is not None
    return member


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


def test_a_member_who_names_no_workspace_is_refused(client: TestClient, factory: Factory) -> None:
    """A member's identity exists only in their workspace: without it they are nobody."""
    ws = factory.workspace()
    response = _login(client, ws.admin, None)
    assert response.status_code == 401
    assert "incorrect" in response.json()["detail"]


@pytest.mark.parametrize(
    "mistake",
    ["wrong-password", "unknown-email", "other-workspace", "no-such-workspace", "bad-slug"],
)
def test_failed_logins_say_incorrect(remote: TestClient, factory: Factory, mistake: str) -> None:
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
    response = remote.post(LOGIN, json=body)
    assert response.status_code == 401
    assert "incorrect" in response.json()["detail"]
    assert "access_token" not in response.json()


def test_failed_logins_are_on_the_platform_trail(
    remote: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    remote.post(LOGIN, json={"email": ws.admin.email, "password": "wrong-one!", "tenant": ws.slug})
    _login(remote, ws.admin, ws)
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


def _failures(runtime: Runtime, key: str) -> int:
    """Attempts counted against a throttle key (auth.throttle.account_key or address_key)."""
    with transaction(runtime.sessions) as session:
        count = session.scalar(
            text("SELECT attempts FROM public.login_throttle WHERE key = :k"), {"k": key}
        )
    return int(count or 0)


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    """The throttle's clock stands still: its 1 s delay cannot pass between two requests of a
    slow run, and passes when a test shifts it."""
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def _assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert "access_token" not in response.json()
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.usefixtures("frozen")
def test_repeated_failures_are_throttled_per_account(
    client_from: ClientFrom, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    bystander = factory.member(ws, "agent")
    limit = runtime.settings.login_attempts_per_account
    # Each guess from another address, and in another letter case: the account's count alone
    # trips the limit, however its email is spelt.
    for n in range(limit):
        email = ws.admin.email.upper() if n % 2 else ws.admin.email
        bad = {"email": email, "password": "wrong-password", "tenant": ws.slug}
        assert client_from(_new_address()).post(LOGIN, json=bad).status_code == 401
    # Even the right password is refused now, from any address and in any letter case, while
    # other accounts sign in.
    shouted = Member(ws.admin.user_id, ws.admin.email.upper(), PASSWORD, "admin")
    for member in (ws.admin, shouted):
        _assert_throttled(_login(client_from(_new_address()), member, ws))
    assert _login(client_from(_new_address()), bystander, ws).status_code == 200


@pytest.mark.usefixtures("frozen")
def test_repeated_failures_are_throttled_per_address(
    client_from: ClientFrom, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    address = _new_address()
    guesser = client_from(address)
    limit = runtime.settings.login_attempts_per_address
    # Each guess at another account: only the address's count can trip the limit.
    for n in range(limit):
        guess = {"email": f"guess-{n}-{uuid.uuid4().hex[:6]}@example.com", "password": "x" * 9}
        assert guesser.post(LOGIN, json=guess).status_code == 401
    assert _failures(runtime, address_key(address)) == limit
    # A real member's right password from that address is refused; from another, accepted.
    _assert_throttled(_login(guesser, ws.admin, ws))
    assert _login(client_from(_new_address()), ws.admin, ws).status_code == 200
    # The refusal is on the platform trail, and did not count as one more failure.
    assert _failures(runtime, address_key(address)) == limit
    with transaction(runtime.sessions) as session:
        events = session.scalars(
            select(PlatformAuditEvent)
            .where(PlatformAuditEvent.actor_email == ws.admin.email)
            .order_by(PlatformAuditEvent.id)
        ).all()
    assert [(e.action, e.outcome, e.details.get("reason")) for e in events][-2:] == [
        ("auth.login_failed", "denied", "rate_limited"),
        ("auth.login", "success", None),
    ]


def test_a_successful_login_clears_the_accounts_failures(
    remote: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    limit = runtime.settings.login_attempts_per_account
    bad = {"email": ws.admin.email, "password": "wrong-password", "tenant": ws.slug}
    for _ in range(limit - 1):
        assert remote.post(LOGIN, json=bad).status_code == 401
    assert _login(remote, ws.admin, ws).status_code == 200
    assert _failures(runtime, account_key(ws.admin.email, ws.slug)) == 0
    # A fresh allowance: one more mistake is a 401, not a 429.
    assert remote.post(LOGIN, json=bad).status_code == 401


def test_an_email_is_one_account_whatever_its_letter_case(
    remote: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    shouted = ws.admin.email.upper()
    assert (
        _login(remote, Member(ws.admin.user_id, shouted, PASSWORD, "admin"), ws).status_code == 200
    )
    with pytest.raises(IntegrityError, match="uq_members_tenant_id_email_lower"):
        factory.member(ws, "agent", email=shouted)


def test_a_disabled_operator_cannot_sign_in_and_their_tokens_stop(
    remote: TestClient, factory: Factory, runtime: Runtime
) -> None:
    operator = factory.operator()
    pair = _login(remote, operator, None).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert remote.get("/api/v1/auth/me", headers=headers).status_code == 200
    with transaction(runtime.sessions) as session:
        session.execute(
            text("UPDATE public.users SET disabled = true WHERE id = :u"), {"u": operator.user_id}
        )
    refused = _login(remote, operator, None)
    assert refused.status_code == 401
    assert "incorrect" in refused.json()["detail"]
    assert remote.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient, factory: Factory) -> None:
    ws = factory.workspace()
    first = _login(client, ws.admin, ws).json()["refresh_token"]
    other_device = _login(client, ws.admin, ws).json()["refresh_token"]
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200
    second_token = second.json()["refresh_token"]
    assert second_token != first
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
    )
    assert me.json()["tenant"]["slug"] == ws.slug
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second_token})
    assert third.status_code == 200
    third_token = third.json()["refresh_token"]

    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    # The thief replayed `first`; every token descended from it dies with the family, while
    # the same user's other sign-in is another family and lives on.
    for descendant in (second_token, third_token):
        after = client.post("/api/v1/auth/refresh", json={"refresh_token": descendant})
        assert after.status_code == 401
    assert (
        client.post("/api/v1/auth/refresh", json={"refresh_token": other_device}).status_code == 200
    )


def test_refresh_tokens_are_stored_only_as_digests(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    token = _login(client, ws.admin, ws).json()["refresh_token"]
    with transaction(runtime.sessions) as session:
        stored = session.scalars(
            select(RefreshToken.token_hash).where(RefreshToken.user_id == ws.admin.user_id)
        ).all()
        dumped = session.scalar(
            text("SELECT string_agg(t::text, ' ') FROM public.refresh_tokens t WHERE user_id = :u"),
            {"u": ws.admin.user_id},
        )
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in (dumped or "")


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
        user = _identity(session, ws)
        user.password_hash = strong_hash
    assert _login(client, ws.admin, ws).status_code == 200
    with transaction(runtime.sessions) as session:
        upgraded = _identity(session, ws)
        assert upgraded.password_hash != strong_hash
        assert upgraded.password_hash is not None
        assert "m=1024" in upgraded.password_hash
    # Now current: the next login keeps the hash as it is.
    assert _login(client, ws.admin, ws).status_code == 200
    with transaction(runtime.sessions) as session:
        again = _identity(session, ws)
        assert again.password_hash == upgraded.password_hash


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
        "sid": str(_session_of(runtime, member, ws)),
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _session_of(runtime: Runtime, member: Member, ws: Workspace) -> uuid.UUID:
    with transaction(runtime.sessions) as session:
        session_id, _ = start_session(
            session, user_id=member.user_id, tenant_id=ws.id, lifetime=timedelta(days=1)
        )
    return session_id


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
        "missing-exp",
        "unknown-kid",
        "wrong-key",
        "no-token",
    ],
)
def test_bad_tokens_are_401(
    client: TestClient, factory: Factory, runtime: Runtime, case: str
) -> None:
    ws = factory.workspace()
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
        # With the live kid, so that the algorithm list refuses it, not the key lookup.
        token = jwt.encode(
            _claims(runtime, member, ws), None, algorithm="none", headers={"kid": "dev"}
        )
    elif case == "wrong-audience":
        token = _sign(runtime, _claims(runtime, member, ws, aud="someone-else"))
    elif case == "wrong-issuer":
        token = _sign(runtime, _claims(runtime, member, ws, iss="evil"))
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


def test_a_token_built_like_the_bad_ones_but_sound_is_accepted(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    """The control for the cases above: each differs from this token in one respect only."""
    ws = factory.workspace()
    token = _sign(runtime, _claims(runtime, ws.admin, ws))
    response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_a_token_whose_tid_was_edited_fails_the_signature_check(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    a, b = factory.workspace(), factory.workspace()
    # One id in both workspaces (as migrating global identities left it): only the signature
    # can tell the edited token from a real one.
    member = factory.member(a, "agent")
    factory.member(b, "admin", email=member.email, user_id=member.user_id)
    b_secret = client.post(
        "/api/v1/tickets",
        json={"title": "secret in B", "customer_email": "c@example.com"},
        headers=factory.headers(b.admin, b),
    )
    assert b_secret.status_code == 201, b_secret.text
    token_for_a = factory.token(member, a)
    assert client.get("/api/v1/tickets", headers=factory.headers(member, b)).status_code == 200

    forged = _tampered_tid(token_for_a, str(b.id))
    assert jwt.decode(forged, options={"verify_signature": False})["tid"] == str(b.id)
    for path in ("/api/v1/tickets", f"/api/v1/tickets/{b_secret.json()['id']}"):
        response = client.get(path, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, response.text
        assert "invalid" in response.json()["detail"]
        assert "secret" not in response.text


@pytest.mark.parametrize(
    "attempt",
    [
        "GET /tickets",
        "GET /auth/me",
        "POST /tickets",
        "POST /auth/login",
        "POST /auth/refresh",
    ],
)
# API.md names one code for a workspace its members cannot use; one being deleted is such a
# workspace too, and the detail says which it is.
@pytest.mark.parametrize(("status", "said"), [("suspended", "suspended"), ("deleting", "deleted")])
def test_suspended_workspace_answers_403(
    remote: TestClient, factory: Factory, runtime: Runtime, attempt: str, status: str, said: str
) -> None:
    ws = factory.workspace()
    pair = _login(remote, ws.admin, ws).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    with transaction(runtime.sessions) as session:
        session.execute(
            text("UPDATE public.tenants SET status = :status WHERE id = :id"),
            {"status": status, "id": ws.id},
        )
    if attempt == "POST /auth/login":
        response = _login(remote, ws.admin, ws)
    elif attempt == "POST /auth/refresh":
        response = remote.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
    else:
        method, path = attempt.split()
        body = {"title": "t", "customer_email": "c@example.com"} if method == "POST" else None
        response = remote.request(method, f"/api/v1{path}", json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "tenant_suspended"
    assert said in response.json()["detail"]


def test_removed_member_is_refused_at_once(
    client: TestClient, factory: Factory, runtime: Runtime
) -> None:
    ws = factory.workspace()
    agent = factory.member(ws, "agent")
    headers = factory.headers(agent, ws)
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    with transaction(runtime.sessions) as session:
        session.execute(
            text("DELETE FROM public.members WHERE user_id = :u AND tenant_id = :t"),
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
            text("UPDATE public.members SET role = 'viewer' WHERE user_id = :u AND tenant_id = :t"),
            {"u": agent.user_id, "t": ws.id},
        )
    refused = client.post(
        "/api/v1/tickets", json={"title": "no", "customer_email": "c@example.com"}, headers=headers
    )
    assert refused.status_code == 403
    assert "permission" in refused.json()["detail"]
