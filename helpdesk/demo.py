"""A demo workspace for `helpdesk serve --demo`: one user per built-in role and a few tickets.

Passwords are drawn fresh on every run and printed; none is written in the code.
"""

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from auth.passwords import hash_password
from auth.permissions import BUILTIN_ROLES
from auth.users import add_member_identity, create_user, find_member_by_email, find_user_by_email
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.tickets.models import Ticket
from helpdesk.workspaces.service import create_workspace
from tenants.models import Tenant

DEMO_SLUG = "demo"
DEMO_OPERATOR = "operator@demo.example"
DEMO_TICKETS = (
    ("Cannot sign in after password reset", "high"),
    ("Invoice shows the wrong VAT number", "medium"),
    ("Export to CSV times out", "critical"),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    tenant: str | None


def _upsert_operator(session: Session, email: str) -> str:
    password = secrets.token_urlsafe(12)
    user = find_user_by_email(session, email)
    if user is None:
        name = email.split("@", maxsplit=1)[0]
        create_user(session, email=email, name=name, password=password, is_operator=True)
    else:
        user.password_hash = hash_password(password)
    return password


def _upsert_member(session: Session, tenant: Tenant, email: str, role: str) -> str:
    password = secrets.token_urlsafe(12)
    member = find_member_by_email(session, tenant.id, email)
    if member is None:
        add_member_identity(
            session,
            tenant_id=tenant.id,
            email=email,
            name=email.split("@", maxsplit=1)[0],
            role=role,
            password_hash=hash_password(password),
        )
    else:
        member.password_hash = hash_password(password)
    return password


def seed_demo(sessions: sessionmaker[Session]) -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    with transaction(sessions) as session:
        password = _upsert_operator(session, DEMO_OPERATOR)
        logins.append(DemoLogin(DEMO_OPERATOR, password, "operator", None))
        tenant = session.scalars(select(Tenant).where(Tenant.slug == DEMO_SLUG)).one_or_none()
        created = tenant is None
        if tenant is None:
            tenant = create_workspace(
                session,
                slug=DEMO_SLUG,
                name="Demo Company",
                admin_email="admin@demo.example",
                admin_password_hash=hash_password(secrets.token_urlsafe(12)),
            )
        for role in BUILTIN_ROLES:
            email = f"{role}@demo.example"
            logins.append(
                DemoLogin(email, _upsert_member(session, tenant, email, role), role, DEMO_SLUG)
            )
        schema, role_name = tenant.schema_name, tenant.role_name
    if created:
        with tenant_transaction(sessions, schema, role_name) as session:
            session.add_all(
                Ticket(title=title, priority=priority) for title, priority in DEMO_TICKETS
            )
    return logins
