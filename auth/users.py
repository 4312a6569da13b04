"""Queries on identities: platform operators and each workspace's own members."""

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, undefer

from auth.models import Member, User
from auth.passwords import hash_password
from auth.permissions import BUILTIN_ROLES, Permission
from auth.refresh_tokens import end_user_sessions


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(
        select(User).where(func.lower(User.email) == email.lower())
    ).one_or_none()


def create_user(
    session: Session, *, email: str, name: str, password: str | None, is_operator: bool = False
) -> User:
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password) if password else None,
        is_operator=is_operator,
    )
    session.add(user)
    session.flush()
    return user


def find_member_by_email(session: Session, tenant_id: uuid.UUID, email: str) -> Member | None:
    """The workspace's member with this address, with the password hash (the service reads
    it to sign them in; a tenant's role may not)."""
    return session.scalars(
        select(Member)
        .options(undefer(Member.password_hash))
        .where(Member.tenant_id == tenant_id, func.lower(Member.email) == email.lower())
    ).one_or_none()


def membership_role(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID) -> str | None:
    return session.scalar(
        select(Member.role).where(Member.user_id == user_id, Member.tenant_id == tenant_id)
    )


def add_member_identity(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    email: str,
    name: str,
    role: str,
    password_hash: str | None,
) -> Member:
    """A new identity in one workspace, that no other workspace can see or sign in with."""
    member = Member(
        tenant_id=tenant_id, email=email, name=name, role=role, password_hash=password_hash
    )
    session.add(member)
    session.flush()
    return member


# The members of the workspace whose schema the transaction is in. Row-level security says the
# same for a tenant role; the condition also holds for a job's role, and one person's id can
# recur in other workspaces (identities were copied into each by public revision 0004).
_HERE = (
    "FROM public.members m JOIN public.tenants t"
    " ON t.id = m.tenant_id AND t.schema_name = current_schema()"
)


def address_of(session: Session, user_id: uuid.UUID) -> str | None:
    """The address of the current workspace's member ``user_id``, if there is one."""
    email: str | None = session.scalar(
        text(f"SELECT m.email {_HERE} WHERE m.user_id = :u"), {"u": user_id}
    )
    return email


def addresses_holding(session: Session, permission: Permission) -> list[str]:
    """The addresses of the current workspace's members whose role holds ``permission``, by
    a built-in role or a custom one."""
    builtin = [role for role, held in BUILTIN_ROLES.items() if permission in held]
    return list(
        session.scalars(
            text(
                f"SELECT m.email {_HERE}"
                " LEFT JOIN public.custom_roles cr"
                "   ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
                " WHERE m.role = ANY(:builtin) OR :permission = ANY(cr.permissions)"
                " ORDER BY lower(m.email)"
            ),
            {"builtin": builtin, "permission": permission.value},
        )
    )


def find_operator(session: Session, email: str) -> User | None:
    user = find_user_by_email(session, email)
    return user if user is not None and user.is_operator else None


def set_operator_disabled(session: Session, operator: User, *, disabled: bool) -> None:
    """Disable or enable an operator. The request pipeline reads the flag on every request, so
    a disabled operator's tokens are refused on the next one; disabling also ends their
    sessions, so enabling them again revives none (they sign in anew)."""
    operator.disabled = disabled
    if disabled:
        end_user_sessions(session, operator.id, None)
    session.flush()
