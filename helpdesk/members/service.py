"""Member rules: a member is an identity of this workspace alone (another workspace holding
the same address is a different person to us, and invisible here); roles must exist; a
workspace keeps at least one admin; a removal or demotion counts on the member's next request
(the pipeline reads membership every time); and a caller appoints, moves or removes members
only within its own permissions (its privilege ceiling; compliance is the one exception) and
never changes its own role."""

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth.caller import Caller
from auth.models import CustomRole, Invitation, Member
from auth.permissions import BUILTIN_ROLES, Permission
from auth.roles import beyond_appointment_ceiling, resolve_role
from auth.users import add_member_identity
from helpdesk.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from helpdesk.members.schemas import MemberIn, MemberOut, MemberPatch
from helpdesk.roles.service import role_exists

INVITATION_LIFETIME = timedelta(days=7)
ADMIN = "admin"


MemberRow = Row[uuid.UUID, str, str, str, list[str], bool, datetime]


def _row_out(row: MemberRow) -> MemberOut:
    user_id, email, name, role, skills, senior, created_at = row
    return MemberOut(
        user_id=user_id,
        email=email,
        name=name,
        role=role,
        skills=skills,
        senior=senior,
        created_at=created_at,
    )


def _members_query(
    tenant_id: uuid.UUID,
) -> Select[uuid.UUID, str, str, str, list[str], bool, datetime]:
    return select(
        Member.user_id,
        Member.email,
        Member.name,
        Member.role,
        Member.skills,
        Member.senior,
        Member.created_at,
    ).where(Member.tenant_id == tenant_id)


def list_members(
    session: Session, caller: Caller, *, after: str | None, limit: int
) -> list[MemberOut]:
    query = _members_query(caller.workspace.id).order_by(func.lower(Member.email)).limit(limit)
    if after is not None:
        query = query.where(func.lower(Member.email) > after)
    return [_row_out(row) for row in session.execute(query)]


def get_member(session: Session, caller: Caller, user_id: uuid.UUID) -> MemberOut:
    row = session.execute(
        _members_query(caller.workspace.id).where(Member.user_id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No such member in this workspace.", code="member_not_found")
    return _row_out(row)


def _check_role(session: Session, caller: Caller, role: str) -> None:
    if not role_exists(session, caller, role):
        raise InvalidInput(
            f"No role {role!r} in this workspace.", code="unknown_role", field="role"
        )


def _role_permissions(session: Session, caller: Caller, role: str) -> frozenset[Permission]:
    if role in BUILTIN_ROLES:
        return BUILTIN_ROLES[role]
    custom = session.get(CustomRole, (caller.workspace.id, role))
    permissions, _ = resolve_role(role, custom.permissions if custom else None, None)
    return permissions


def _check_ceiling(session: Session, caller: Caller, role: str, doing: str) -> None:
    """Refuse ``doing`` (appointing to ``role``, or moving someone out of it) unless the caller
    holds every permission ``role`` grants."""
    missing = beyond_appointment_ceiling(
        caller.permissions, role, _role_permissions(session, caller, role)
    )
    if missing:
        raise Forbidden(
            f"You lack the permission(s) {', '.join(missing)} that the role {role!r} grants, "
            f"so you may not {doing}: you may assign only roles within your own permissions.",
            permission=Permission.MEMBERS_MANAGE.value,
        )


def add_member(
    session: Session, caller: Caller, data: MemberIn, *, password_hash: str | None
) -> tuple[MemberOut, str | None]:
    """Add a member; ``password_hash`` is ``data.password`` already hashed (off the event loop,
    by the caller: argon2 is CPU-bound), or None to invite them to set one."""
    _check_role(session, caller, data.role)
    _check_ceiling(session, caller, data.role, "appoint anyone to it")
    tenant_id = caller.workspace.id
    taken = session.scalar(
        select(Member.user_id).where(
            Member.tenant_id == tenant_id, func.lower(Member.email) == str(data.email).lower()
        )
    )
    if taken is not None:
        raise _already_member(str(data.email))
    try:
        with session.begin_nested():
            member = add_member_identity(
                session,
                tenant_id=tenant_id,
                email=str(data.email),
                name=data.name,
                role=data.role,
                password_hash=password_hash,
            )
    except IntegrityError as exc:  # a concurrent request added the address first
        raise _already_member(str(data.email)) from exc
    invitation = None
    if password_hash is None:
        invitation = secrets.token_urlsafe(32)
        session.add(
            Invitation(
                token_hash=hashlib.sha256(invitation.encode()).hexdigest(),
                user_id=member.user_id,
                tenant_id=tenant_id,
                expires_at=datetime.now(UTC) + INVITATION_LIFETIME,
            )
        )
        session.flush()
    return get_member(session, caller, member.user_id), invitation


def _already_member(email: str) -> Conflict:
    return Conflict(f"{email} is already a member of this workspace.", code="already_member")


def _lock_admins(session: Session, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the admins' rows: two admins demoting each other at once must not leave none."""
    return list(
        session.scalars(
            select(Member.user_id)
            .where(Member.tenant_id == tenant_id, Member.role == ADMIN)
            .with_for_update()
        )
    )


def _membership(session: Session, caller: Caller, user_id: uuid.UUID) -> Member:
    membership = session.get(Member, (caller.workspace.id, user_id), with_for_update=True)
    if membership is None:
        raise NotFound("No such member in this workspace.", code="member_not_found")
    return membership


def _refuse_last_admin(admins: list[uuid.UUID], user_id: uuid.UUID, action: str) -> None:
    if admins == [user_id]:
        raise Conflict(
            f"Cannot {action} the last admin of this workspace; make another member admin first.",
            code="last_admin",
        )


def update_member(
    session: Session, caller: Caller, user_id: uuid.UUID, patch: MemberPatch
) -> tuple[MemberOut, dict[str, Any]]:
    """Change a member's role, routing skills or seniority; returns the member and
    ``{field: {before, after}}``. A role change keeps every role rule (no changing one's own
    role, the privilege ceiling both ways, the last admin); any change at all needs the member's
    current role to be within the caller's ceiling, as a removal does, so a manager cannot
    reshape the routing of someone it could not appoint."""
    if patch.role is not None:
        _check_role(session, caller, patch.role)
        if user_id == caller.user_id:
            raise Forbidden(
                "You lack permission to change your own role: nobody changes their own role; "
                "ask another member who manages members.",
                permission=Permission.MEMBERS_MANAGE.value,
            )
        _check_ceiling(session, caller, patch.role, "appoint anyone to it")
    admins = _lock_admins(session, caller.workspace.id)
    membership = _membership(session, caller, user_id)
    before = membership.role
    doing = (
        "move a member who holds it" if patch.role is not None else "change a member who holds it"
    )
    _check_ceiling(session, caller, before, doing)
    diff: dict[str, Any] = {}
    if patch.role is not None:
        if before == ADMIN and patch.role != ADMIN:
            _refuse_last_admin(admins, user_id, "demote")
        membership.role = patch.role
        # Recorded even when unchanged, as a role change always was: the appointment was made.
        diff["role"] = {"before": before, "after": patch.role}
    if patch.skills is not None and patch.skills != sorted(membership.skills):
        diff["skills"] = {"before": sorted(membership.skills), "after": patch.skills}
        membership.skills = patch.skills
    if patch.senior is not None and patch.senior != membership.senior:
        diff["senior"] = {"before": membership.senior, "after": patch.senior}
        membership.senior = patch.senior
    session.flush()
    return get_member(session, caller, user_id), diff


def remove_member(session: Session, caller: Caller, user_id: uuid.UUID) -> MemberOut:
    admins = _lock_admins(session, caller.workspace.id)
    member = get_member(session, caller, user_id)
    membership = _membership(session, caller, user_id)
    _check_ceiling(session, caller, membership.role, "remove a member who holds it")
    if membership.role == ADMIN:
        _refuse_last_admin(admins, user_id, "remove")
    session.delete(membership)
    session.flush()
    return member
