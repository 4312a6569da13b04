"""Opaque refresh tokens: stored as SHA-256 digests, rotated on every use.

A token's family (the chain of rotations since one login) is a session: access tokens name it
(the ``sid`` claim), and the request pipeline refuses them once no token of the family is live.
Presenting a token that was already spent means it was copied: every token of its family is
revoked, the thief's and the owner's alike, which ends the session.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auth.models import RefreshToken
from helpdesk.core.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    session_id: uuid.UUID


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, *, user_id: uuid.UUID, tenant_id: uuid.UUID | None, lifetime: timedelta
) -> tuple[uuid.UUID, str]:
    """Open a session: its id (for the access token's ``sid``) and its first refresh token."""
    session_id = uuid.uuid4()
    token = issue_refresh_token(
        session, user_id=user_id, tenant_id=tenant_id, lifetime=lifetime, family_id=session_id
    )
    return session_id, token


def issue_refresh_token(
    session: Session,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    lifetime: timedelta,
    family_id: uuid.UUID,
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=_digest(token),
            family_id=family_id,
            user_id=user_id,
            tenant_id=tenant_id,
            expires_at=datetime.now(UTC) + lifetime,
        )
    )
    session.flush()
    return token


def spend_refresh_token(
    session: Session, token: str, *, lifetime: timedelta
) -> tuple[RefreshGrant, str]:
    """Exchange a live token for a new one of the same family.

    A reused token revokes its family; the caller must commit that revocation even though the
    exchange is refused, so the refusal is returned as ``Unauthorized`` only after the flush.
    """
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(token)).with_for_update()
    ).one_or_none()
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("The refresh token is invalid, expired or revoked.")
    if row.used_at is not None:
        revoke_family(session, row.family_id)
        raise Unauthorized("The refresh token was already used; every session it began is revoked.")
    row.used_at = now
    new_token = issue_refresh_token(
        session,
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        lifetime=lifetime,
        family_id=row.family_id,
    )
    grant = RefreshGrant(user_id=row.user_id, tenant_id=row.tenant_id, session_id=row.family_id)
    return grant, new_token


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def end_session(
    session: Session, *, user_id: uuid.UUID, session_id: uuid.UUID | None, token: str
) -> None:
    """Logout: end the session the access token names and the one the refresh token belongs
    to (the same one, unless the client mixed up two of its sessions), if they are the
    caller's."""
    families = set() if session_id is None else {session_id}
    family = session.scalar(
        select(RefreshToken.family_id).where(
            RefreshToken.token_hash == _digest(token), RefreshToken.user_id == user_id
        )
    )
    if family is not None:
        families.add(family)
    if families:
        session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.family_id.in_(families),
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        )


def end_user_sessions(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> int:
    """End every session of ``user_id`` in one workspace (None: on the platform); how many
    refresh tokens that revoked."""
    result = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.user_id == user_id,
            RefreshToken.tenant_id.is_(None)
            if tenant_id is None
            else RefreshToken.tenant_id == tenant_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
