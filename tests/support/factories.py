"""Builders for test data. Tests isolate themselves by creating fresh workspaces."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from auth.models import Member as MemberRow
from auth.passwords import hash_password
from auth.refresh_tokens import start_session
from auth.tokens import issue_access_token
from auth.users import create_user, find_member_by_email
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from helpdesk.workspaces.service import create_workspace

PASSWORD = "correct-horse-battery"


def unique_slug(prefix: str = "ws") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    email: str
    password: str
    role: str


@dataclass(frozen=True)
class Workspace:
    id: uuid.UUID
    slug: str
    schema_name: str
    role_name: str
    admin: Member


class Factory:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def workspace(self, slug: str | None = None) -> Workspace:
        slug = slug or unique_slug()
        email = f"admin-{uuid.uuid4().hex[:8]}.{slug}@example.com"
        with transaction(self.runtime.sessions) as session:
            tenant = create_workspace(
                session,
                slug=slug,
                name=f"Workspace {slug}",
                admin_email=email,
                admin_password_hash=hash_password(PASSWORD),
            )
            admin = find_member_by_email(session, tenant.id, email)
            assert admin is not None
            admin_id = admin.user_id
            return Workspace(
                tenant.id,
                slug,
                tenant.schema_name,
                tenant.role_name,
                Member(admin_id, email, PASSWORD, "admin"),
            )

    def member(
        self,
        workspace: Workspace,
        role: str,
        *,
        email: str | None = None,
        user_id: uuid.UUID | None = None,
    ) -> Member:
        """A new member of ``workspace``; ``user_id`` reuses an id another workspace's member
        holds, as migrating global identities into each workspace left them."""
        email = email or f"{role}-{uuid.uuid4().hex[:8]}.{workspace.slug}@example.com"
        with transaction(self.runtime.sessions) as session:
            member = MemberRow(
                tenant_id=workspace.id,
                user_id=user_id or uuid.uuid4(),
                email=email,
                name=f"{role} user",
                role=role,
                password_hash=hash_password(PASSWORD),
            )
            session.add(member)
            session.flush()
            return Member(member.user_id, email, PASSWORD, role)

    def operator(self) -> Member:
        email = f"operator-{uuid.uuid4().hex[:8]}@platform.example"
        with transaction(self.runtime.sessions) as session:
            user = create_user(
                session, email=email, name="Operator", password=PASSWORD, is_operator=True
            )
            return Member(user.id, email, PASSWORD, "operator")

    def token(self, member: Member, workspace: Workspace | None) -> str:
        """An access token of a session of its own, as signing in would open."""
        tenant_id = workspace.id if workspace else None
        with transaction(self.runtime.sessions) as session:
            session_id, _ = start_session(
                session, user_id=member.user_id, tenant_id=tenant_id, lifetime=timedelta(days=1)
            )
        token, _ = issue_access_token(self.runtime.settings, member.user_id, tenant_id, session_id)
        return token

    def headers(self, member: Member, workspace: Workspace | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(member, workspace)}"}
