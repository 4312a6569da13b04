"""Membership rules: roles must exist, a workspace keeps at least one admin, and a removal or
demotion counts on the member's next request (the pipeline reads membership every time)."""

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Row, Select, func, select, text
from sqlalchemy.orm import Session

from auth.caller import Caller
from auth.models import Invitation, Membership, User
from helpdesk.core.errors import Conflict, InvalidInput, NotFound
from helpdesk.members.schemas import MemberIn, MemberOut
from helpdesk.roles.service import role_exists

INVITATION_LIFETIME = timedelta(days=7)
ADMIN = "admin"


MemberRow = Row[uuid.UUID, str, str, str, datetime]


def _row_out(row: MemberRow) -> MemberOut:
    user_id, email, name, role, created_at = row
    return MemberOut(user_id=user_id, email=email, name=name, role=role, created_at=created_at)


def _members_query(tenant_id: uuid.UUID) -> Select[uuid.UUID, str, str, str, datetime]:
    return (
        select(Membership.user_id, User.email, User.name, Membership.role, Membership.created_at)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id)
    )


def list_members(
    session: Session, caller: Caller, *, after: str | None, limit: int
) -> list[MemberOut]:
    query = _members_query(caller.workspace.id).order_by(func.lower(User.email)).limit(limit)
    if after is not None:
        query = query.where(func.lower(User.email) > after)
    return [_row_out(row) for row in session.execute(query)]


def get_member(session: Session, caller: Caller, user_id: uuid.UUID) -> MemberOut:
    row = session.execute(
        _members_query(caller.workspace.id).where(Membership.user_id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No such member in this workspace.", code="member_not_found")
    return _row_out(row)


def _check_role(session: Session, caller: Caller, role: str) -> None:
    if not role_exists(session, caller, role):
        raise InvalidInput(
            f"No role {role!r} in this workspace.", code="unknown_role", field="role"
        )


def add_member(
    session: Session, caller: Caller, data: MemberIn, *, password_hash: str | None
) -> tuple[MemberOut, str | None]:
    """Add a member; ``password_hash`` is ``data.password`` already hashed (off the event loop,
    by the caller: argon2 is CPU-bound), or None to invite them to set one."""
    _check_role(session, caller, data.role)
    # A SECURITY DEFINER function: the tenant's role may create an identity or find one by
    # email, and learns nothing else about identities outside its workspace.
    user_id, created = session.execute(
        text("SELECT user_id, created FROM public.ensure_identity(:email, :name, :hash)"),
        {"email": str(data.email), "name": data.name, "hash": password_hash},
    ).one()
    tenant_id = caller.workspace.id
    if session.get(Membership, (user_id, tenant_id)) is not None:
        raise Conflict(
            f"{data.email} is already a member of this workspace.", code="already_member"
        )
    session.add(Membership(user_id=user_id, tenant_id=tenant_id, role=data.role))
    session.flush()
    invitation = None
    if created and password_hash is None:
        invitation = secrets.token_urlsafe(32)
        session.add(
            Invitation(
                token_hash=hashlib.sha256(invitation.encode()).hexdigest(),
                user_id=user_id,
                tenant_id=tenant_id,
                expires_at=datetime.now(UTC) + INVITATION_LIFETIME,
            )
        )
        session.flush()
    return get_member(session, caller, user_id), invitation


def _lock_admins(session: Session, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the admins' rows: two admins demoting each other at once must not leave none."""
    return list(
        session.scalars(
            select(Membership.user_id)
            .where(Membership.tenant_id == tenant_id, Membership.role == ADMIN)
            .with_for_update()
        )
    )


def _membership(session: Session, caller: Caller, user_id: uuid.UUID) -> Membership:
    membership = session.get(Membership, (user_id, caller.workspace.id), with_for_update=True)
    if membership is None:
        raise NotFound("No such member in this workspace.", code="member_not_found")
    return membership


def _refuse_last_admin(admins: list[uuid.UUID], user_id: uuid.UUID, action: str) -> None:
    if admins == [user_id]:
        raise Conflict(
            f"Cannot {action} the last admin of this workspace; make another member admin first.",
            code="last_admin",
        )


def change_role(
    session: Session, caller: Caller, user_id: uuid.UUID, role: str
) -> tuple[MemberOut, str]:
    _check_role(session, caller, role)
    admins = _lock_admins(session, caller.workspace.id)
    membership = _membership(session, caller, user_id)
    before = membership.role
    if before == ADMIN and role != ADMIN:
        _refuse_last_admin(admins, user_id, "demote")
    membership.role = role
    session.flush()
    return get_member(session, caller, user_id), before


def remove_member(session: Session, caller: Caller, user_id: uuid.UUID) -> MemberOut:
    admins = _lock_admins(session, caller.workspace.id)
    member = get_member(session, caller, user_id)
    membership = _membership(session, caller, user_id)
    if membership.role == ADMIN:
        _refuse_last_admin(admins, user_id, "remove")
    session.delete(membership)
    session.flush()
    return member
