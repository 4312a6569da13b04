"""Console sessions: sign-in through the API's sign-in service (its throttle, its audit, its
session family), then an opaque cookie id that maps to that session server-side.

The cookie is never a token: it is a random id whose SHA-256 names a row, so it can be ended
at once (sign-out, idle or absolute timeout) and a stolen database does not hold live cookies.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from auth.refresh_tokens import revoke_family
from auth.tokens import decode_access_token
from helpdesk.console.models import ConsoleSession
from helpdesk.core.db import transaction
from helpdesk.core.settings import Settings
from helpdesk.signin import service as signin

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class ConsoleGrant:
    """Who a live console session belongs to, and its CSRF token."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    csrf_token: str
    expires_at: datetime


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def sign_in(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    email: str,
    password: str,
    tenant_slug: str,
    address: str,
) -> str:
    """Sign a member in (throttled and audited exactly as ``POST /auth/login``) and open a
    console session on the session that sign-in began; return the cookie's opaque id."""
    pair = signin.login(
        sessions, settings, email=email, password=password, tenant_slug=tenant_slug, address=address
    )
    # The access token is read here only for the session it names, then dropped: the browser
    # holds neither it nor the refresh token, only the cookie.
    claims = decode_access_token(settings, pair.access_token)
    if claims.tenant_id is None or claims.session_id is None:
        raise RuntimeError("a member's sign-in names a workspace and a session")
    cookie = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.add(
            ConsoleSession(
                id_hash=_digest(cookie),
                session_id=claims.session_id,
                user_id=claims.user_id,
                tenant_id=claims.tenant_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
            )
        )
    return cookie


def resume(session: Session, cookie: str, now: datetime) -> ConsoleGrant | None:
    """The live session ``cookie`` names, its idle clock restarted; None when there is none.

    A session past either timeout is ended for good here (its row deleted and its session
    family revoked), so an old cookie cannot come back even if the clock were set back."""
    row = session.get(ConsoleSession, _digest(cookie), with_for_update=True)
    if row is None:
        return None
    if now - row.last_seen_at > IDLE_TIMEOUT or now - row.created_at > ABSOLUTE_TIMEOUT:
        revoke_family(session, row.session_id)
        session.delete(row)
        session.flush()
        return None
    row.last_seen_at = now
    session.flush()
    return ConsoleGrant(
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        session_id=row.session_id,
        csrf_token=row.csrf_token,
        expires_at=min(now + IDLE_TIMEOUT, row.created_at + ABSOLUTE_TIMEOUT),
    )


def sign_out(session: Session, cookie: str) -> None:
    """End the session ``cookie`` names: the console row and the session family it rode on."""
    family = session.scalar(
        delete(ConsoleSession)
        .where(ConsoleSession.id_hash == _digest(cookie))
        .returning(ConsoleSession.session_id)
    )
    if family is not None:
        revoke_family(session, family)
