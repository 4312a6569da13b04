"""A demo workspace for `helpdesk serve --demo`: one user per built-in role and a few tickets.

Passwords are drawn fresh on every run and printed; none is written in the code.
"""

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from auth.passwords import hash_password
from auth.permissions import BUILTIN_ROLES
from auth.users import add_membership, create_user, find_user_by_email, membership_role
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


def _upsert_user(session: Session, email: str, *, operator: bool = False) -> tuple[str, object]:
    password = secrets.token_urlsafe(12)
    user = find_user_by_email(session, email)
    if user is None:
        name = email.split("@", maxsplit=1)[0]
        user = create_user(session, email=email, name=name, password=password, is_operator=operator)
    else:
        user.password_hash = hash_password(password)
    return password, user


def seed_demo(sessions: sessionmaker[Session]) -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    with transaction(sessions) as session:
        password, _ = _upsert_user(session, DEMO_OPERATOR, operator=True)
        logins.append(DemoLogin(DEMO_OPERATOR, password, "operator", None))
        tenant = session.scalars(select(Tenant).where(Tenant.slug == DEMO_SLUG)).one_or_none()
        created = tenant is None
        if tenant is None:
            tenant = create_workspace(
                session,
                slug=DEMO_SLUG,
                name="Demo Company",
                admin_email="admin@demo.example",
                admin_password=secrets.token_urlsafe(12),
            )
        for role in BUILTIN_ROLES:
            email = f"{role}@demo.example"
            password, user = _upsert_user(session, email)
            user_id = user.id  # type: ignore[attr-defined]
            if membership_role(session, user_id, tenant.id) is None:
                add_membership(session, user_id=user_id, tenant_id=tenant.id, role=role)
            logins.append(DemoLogin(email, password, role, DEMO_SLUG))
        schema, role_name = tenant.schema_name, tenant.role_name
    if created:
        with tenant_transaction(sessions, schema, role_name) as session:
            session.add_all(
                Ticket(title=title, priority=priority) for title, priority in DEMO_TICKETS
            )
    return logins
