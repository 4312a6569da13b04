"""Invitation and password-reset e-mails for the console: a single-use, expiring link to the
page that sets a password, sent through the workspace's outbox (delivered after commit by the
worker, retried like every e-mail).

A reset link is an invitation row (``public.invitations``: a SHA-256 of the token, its member,
an expiry, a used mark), so one accept page and one rule (``signin.accept_invitation``) serve
both, and removing the member deletes any link of theirs.
"""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from audit.platform import record_platform_event
from auth.models import Invitation
from auth.users import find_member_by_email
from helpdesk.core.db import set_tenant_scope, transaction
from helpdesk.outbox.service import queue_email
from tenants.models import Tenant, TenantStatus
from tenants.slugs import SLUG_PATTERN

RESET_LIFETIME = timedelta(hours=1)
# One reset e-mail per account per this long: the form is public, and must not become a way to
# flood someone's inbox.
RESET_INTERVAL = timedelta(minutes=5)
ACCEPT_PATH = "app/invitations/accept?token="


def invitation_email(
    session: Session, *, workspace: str, email: str, token: str, base_url: str
) -> None:
    """Queue the invitation e-mail in the caller's (workspace's) transaction."""
    queue_email(
        session,
        event="member.invited",
        to=email,
        subject=f"You are invited to {workspace} on Helpdesk",
        body=(
            f"You have been invited to the workspace {workspace}.\n\n"
            f"Choose your password here (the link works once, for 7 days):\n"
            f"{base_url}{ACCEPT_PATH}{token}\n"
        ),
    )


def request_reset(
    sessions: sessionmaker[Session], *, workspace: str, email: str, base_url: str
) -> bool:
    """Send a reset link if ``email`` is a member of ``workspace``; whether one was sent is for
    tests and the audit trail only: the page answers the same either way."""
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        tenant = None
        if SLUG_PATTERN.fullmatch(workspace):
            tenant = session.scalars(select(Tenant).where(Tenant.slug == workspace)).one_or_none()
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            return False
        member = find_member_by_email(session, tenant.id, email)
        if member is None:
            return False
        recent = session.scalar(
            select(Invitation.token_hash).where(
                Invitation.tenant_id == tenant.id,
                Invitation.user_id == member.user_id,
                Invitation.used_at.is_(None),
                # A reset link of the last few minutes (an invitation lives for days).
                Invitation.expires_at > now + RESET_LIFETIME - RESET_INTERVAL,
                Invitation.expires_at <= now + RESET_LIFETIME,
            )
        )
        if recent is not None:
            return False
        # Only the newest link works: an older one in a mailbox is dead.
        session.execute(
            delete(Invitation).where(
                Invitation.tenant_id == tenant.id,
                Invitation.user_id == member.user_id,
                Invitation.used_at.is_(None),
            )
        )
        token = secrets.token_urlsafe(32)
        session.add(
            Invitation(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                user_id=member.user_id,
                tenant_id=tenant.id,
                expires_at=now + RESET_LIFETIME,
            )
        )
        record_platform_event(
            session,
            action="auth.password_reset_requested",
            actor_id=member.user_id,
            actor_email=member.email,
            tenant_id=tenant.id,
        )
        session.flush()
        # The e-mail waits in the workspace's own outbox, under the workspace's role.
        set_tenant_scope(session, tenant.schema_name, tenant.role_name)
        queue_email(
            session,
            event="auth.password_reset",
            to=member.email,
            subject="Reset your Helpdesk password",
            body=(
                f"Someone asked to reset your password for the workspace {tenant.name}.\n\n"
                f"Choose a new one here (the link works once, for an hour):\n"
                f"{base_url}{ACCEPT_PATH}{token}\n\n"
                "If it was not you, ignore this e-mail: your password stays as it is.\n"
            ),
        )
        return True
