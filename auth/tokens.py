"""Access tokens: short-lived JWTs, signed with the key named by ``kid`` so keys can rotate."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from helpdesk.core.errors import Unauthorized
from helpdesk.core.settings import Settings

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "tid", "iat", "exp", "jti"]
# ``tid`` must be present; a platform operator's token names no workspace.
PLATFORM_TID = "platform"
# The session (refresh-token family) a token belongs to. Not in REQUIRED_CLAIMS, so that a token
# without one decodes and is then refused by the request pipeline, which checks the session.
SESSION_CLAIM = "sid"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    token_id: str
    expires_at: datetime
    session_id: uuid.UUID | None = None


def issue_access_token(
    settings: Settings,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    session_id: uuid.UUID | None = None,
) -> tuple[str, int]:
    """Return the signed token and its lifetime in seconds; ``session_id`` names the session
    (refresh-token family) it belongs to, and a token without one is refused on use."""
    now = datetime.now(UTC)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "tid": str(tenant_id) if tenant_id else PLATFORM_TID,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims[SESSION_CLAIM] = str(session_id)
    token = jwt.encode(
        claims,
        settings.signing_key,
        algorithm=ALGORITHMS[0],
        headers={"kid": settings.signing_key_id},
    )
    return token, int(lifetime.total_seconds())


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = settings.signing_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized("The access token was signed with an unknown key.")
        claims = jwt.decode(
            token,
            key.get_secret_value(),
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": REQUIRED_CLAIMS},
        )
        user_id = uuid.UUID(claims["sub"])
        tid = claims["tid"]
        tenant_id = None if tid == PLATFORM_TID else uuid.UUID(tid)
        sid = claims.get(SESSION_CLAIM)
        session_id = None if sid is None else uuid.UUID(sid)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired; refresh it or sign in again.") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError) as exc:
        raise Unauthorized("The access token is invalid.") from exc
    return AccessClaims(
        user_id=user_id,
        tenant_id=tenant_id,
        token_id=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        session_id=session_id,
    )
