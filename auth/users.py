"""Queries on global identities and memberships."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.models import Membership, User
from auth.passwords import hash_password
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


def membership_role(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID) -> str | None:
    return session.scalar(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.tenant_id == tenant_id
        )
    )


def add_membership(
    session: Session, *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str
) -> None:
    session.add(Membership(user_id=user_id, tenant_id=tenant_id, role=role))
    session.flush()


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
