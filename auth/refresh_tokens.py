"""Opaque refresh tokens: stored as SHA-256 digests, rotated on every use.

Presenting a token that was already spent means it was copied: every token of its family (the
chain of rotations since one login) is revoked, the thief's and the owner's alike.
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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_refresh_token(
    session: Session,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    lifetime: timedelta,
    family_id: uuid.UUID | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=_digest(token),
            family_id=family_id or uuid.uuid4(),
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
    return RefreshGrant(user_id=row.user_id, tenant_id=row.tenant_id), new_token


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def revoke_refresh_token(session: Session, token: str, *, user_id: uuid.UUID) -> bool:
    """Logout: revoke the presented token's family if it belongs to ``user_id``."""
    row = session.scalars(
        select(RefreshToken).where(
            RefreshToken.token_hash == _digest(token), RefreshToken.user_id == user_id
        )
    ).one_or_none()
    if row is None:
        return False
    revoke_family(session, row.family_id)
    return True


def revoke_user_tokens(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> None:
    session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.user_id == user_id,
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
