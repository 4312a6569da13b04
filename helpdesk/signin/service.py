"""Sign-in rules. Login owns its transactions: a refused attempt must be recorded (throttle
counter and platform audit) even though the request fails, so the refusal commits on its own."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker, undefer

from audit.platform import record_platform_event
from auth.models import Invitation, Member
from auth.passwords import hash_password, password_problem, verify_password
from auth.refresh_tokens import (
    end_session,
    end_user_sessions,
    spend_refresh_token,
    start_session,
)
from auth.throttle import attempt_succeeded, count_attempt
from auth.tokens import issue_access_token
from auth.users import find_member_by_email, find_user_by_email, membership_role
from helpdesk.core.db import transaction
from helpdesk.core.errors import AppError, InvalidInput, RateLimited, Unauthorized
from helpdesk.core.settings import Settings
from tenants.models import Tenant, TenantStatus
from tenants.registry import get_by_id, unavailable
from tenants.slugs import SLUG_PATTERN

INCORRECT = "Email, password or workspace is incorrect."


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


def _issue(
    session: Session, settings: Settings, user_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> TokenPair:
    """Open a session: the access token names it, so it dies with the session."""
    session_id, refresh = start_session(
        session,
        user_id=user_id,
        tenant_id=tenant_id,
        lifetime=timedelta(days=settings.refresh_token_days),
    )
    access, expires_in = issue_access_token(settings, user_id, tenant_id, session_id)
    return TokenPair(access, expires_in, refresh)


def _check_operator(session: Session, email: str, password: str) -> uuid.UUID:
    user = find_user_by_email(session, email)
    matches, new_hash = verify_password(password, user.password_hash if user else None)
    # Without a workspace only an operator signs in; a member names their workspace.
    if user is None or not matches or user.disabled or not user.is_operator:
        raise Unauthorized(INCORRECT, code="login_failed")
    if new_hash:
        user.password_hash = new_hash
    return user.id


def _check_member(session: Session, email: str, password: str, tenant_slug: str) -> Member:
    """A member signs in with their identity in the workspace they name, and only there."""
    tenant = None
    if SLUG_PATTERN.fullmatch(tenant_slug):
        tenant = session.scalars(select(Tenant).where(Tenant.slug == tenant_slug)).one_or_none()
    member = find_member_by_email(session, tenant.id, email) if tenant is not None else None
    # Verified even when there is no such member, so the answer takes as long either way.
    matches, new_hash = verify_password(password, member.password_hash if member else None)
    if tenant is None or member is None or not matches:
        raise Unauthorized(INCORRECT, code="login_failed")
    if tenant.status != TenantStatus.ACTIVE:
        raise unavailable(tenant.slug, tenant.status)
    if new_hash:
        member.password_hash = new_hash
    return member


def _check_credentials(
    session: Session, email: str, password: str, tenant_slug: str | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    if tenant_slug is None:
        return _check_operator(session, email, password), None
    member = _check_member(session, email, password, tenant_slug)
    return member.user_id, member.tenant_id


def login(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
    address: str,
) -> TokenPair:
    try:
        # Its own transaction, committed before the password is checked: the count is taken
        # under the counters' row lock, and parallel guesses must see it at once.
        with transaction(sessions) as session:
            attempt = count_attempt(
                session, settings, email=email, workspace=tenant_slug, address=address
            )
    except RateLimited:
        # Not counted (that would stretch the delay for ever), but on record.
        with transaction(sessions) as session:
            record_platform_event(
                session,
                action="auth.login_failed",
                outcome="denied",
                actor_email=email,
                details={"reason": "rate_limited", "tenant": tenant_slug},
            )
        raise
    try:
        with transaction(sessions) as session:
            user_id, tenant_id = _check_credentials(session, email, password, tenant_slug)
            attempt_succeeded(session, attempt)
            pair = _issue(session, settings, user_id, tenant_id)
            record_platform_event(
                session,
                action="auth.login",
                actor_id=user_id,
                actor_email=email,
                tenant_id=tenant_id,
            )
            return pair
    except AppError as refusal:
        # The attempt was counted before the check; only the refusal remains to record.
        with transaction(sessions) as session:
            record_platform_event(
                session,
                action="auth.login_failed",
                outcome="denied",
                actor_email=email,
                details={"reason": refusal.code, "tenant": tenant_slug},
            )
        raise


def refresh(sessions: sessionmaker[Session], settings: Settings, token: str) -> TokenPair:
    lifetime = timedelta(days=settings.refresh_token_days)
    refusal: Unauthorized | None = None
    with transaction(sessions) as session:
        try:
            grant, new_refresh = spend_refresh_token(session, token, lifetime=lifetime)
        except Unauthorized as exc:
            refusal = exc  # commit the family revocation before refusing
        else:
            if grant.tenant_id is not None:
                tenant = get_by_id(session, grant.tenant_id)
                if (
                    tenant is None
                    or membership_role(session, grant.user_id, grant.tenant_id) is None
                ):
                    raise Unauthorized("The refresh token is revoked: its membership has ended.")
                if tenant.status != TenantStatus.ACTIVE:
                    # Raised inside the transaction: the token is not spent, and works again
                    # once the workspace is resumed.
                    raise unavailable(tenant.slug, tenant.status)
            access, expires_in = issue_access_token(
                settings, grant.user_id, grant.tenant_id, grant.session_id
            )
            return TokenPair(access, expires_in, new_refresh)
    raise refusal


def logout(
    sessions: sessionmaker[Session], token: str, user_id: uuid.UUID, session_id: uuid.UUID | None
) -> None:
    """End the session: the access token that names it is refused from the next request on.
    Refresh tokens live in ``public``, out of reach of a tenant's role, so this runs in its own
    transaction rather than the tenant scope."""
    with transaction(sessions) as session:
        end_session(session, user_id=user_id, session_id=session_id, token=token)


def accept_invitation(sessions: sessionmaker[Session], token: str, password: str) -> str:
    """Set a new member's first password from their one-time invitation; return their email."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with transaction(sessions) as session:
        invitation = session.get(Invitation, digest, with_for_update=True)
        if invitation is None or invitation.used_at or invitation.expires_at <= datetime.now(UTC):
            raise Unauthorized("The invitation is invalid, used or expired; ask for a new one.")
        member = session.get(
            Member,
            (invitation.tenant_id, invitation.user_id),
            options=[undefer(Member.password_hash)],
        )
        if member is None:
            raise Unauthorized("The invitation is invalid, used or expired; ask for a new one.")
        # Checked once the invitation says whose it is: the rule refuses the own address too.
        if problem := password_problem(password, email=member.email):
            raise InvalidInput(f"The password is not usable: {problem}.", field="password")
        member.password_hash = hash_password(password)
        invitation.used_at = datetime.now(UTC)
        # A link that sets a password also serves "forgot password" (the console's reset):
        # whoever held the old password is signed out everywhere in this workspace.
        end_user_sessions(session, member.user_id, invitation.tenant_id)
        record_platform_event(
            session,
            action="auth.invitation_accepted",
            actor_id=member.user_id,
            actor_email=member.email,
            tenant_id=invitation.tenant_id,
        )
        return member.email
