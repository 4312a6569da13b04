"""Workspace lifecycle rules; every step lands on the platform audit trail."""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from audit.platform import record_platform_event
from auth.users import add_member_identity
from helpdesk.core.errors import Conflict
from migrations.models import tenant_ddl
from tenants import registry
from tenants.models import Tenant, TenantStatus
from tenants.provisioning import drop_tenant, provision_tenant

DELETION_GRACE = timedelta(days=30)


def create_workspace(
    session: Session,
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password_hash: str,
    admin_name: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> Tenant:
    tenant = provision_tenant(session, slug=slug, name=name, ddl=tenant_ddl())
    # The first admin is a new identity of this workspace alone, with the operator's password:
    # whatever any other workspace did with the same address has no say here.
    admin = add_member_identity(
        session,
        tenant_id=tenant.id,
        email=admin_email,
        name=admin_name or admin_email.split("@", maxsplit=1)[0],
        role="admin",
        password_hash=admin_password_hash,
    )
    _lifecycle_event(
        session,
        tenant,
        "tenant.create",
        actor_id,
        details={"slug": slug, "admin_user_id": str(admin.user_id)},
    )
    return tenant


def _lifecycle_event(
    session: Session,
    tenant: Tenant,
    action: str,
    actor_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
) -> None:
    """A step of a workspace's life, on the platform trail (DESIGN.md: every step is audited)."""
    record_platform_event(
        session,
        action=action,
        actor_id=actor_id,
        target_type="tenant",
        target_id=str(tenant.id),
        tenant_id=tenant.id,
        details=details,
    )


def list_workspaces(session: Session, *, after: str | None, limit: int) -> Sequence[Tenant]:
    return registry.list_tenants(session, after=after, limit=limit)


def update_workspace(
    session: Session,
    slug: str,
    *,
    status: TenantStatus | None,
    name: str | None,
    actor_id: uuid.UUID | None = None,
) -> Tenant:
    tenant = registry.get_by_slug(session, slug, for_update=True)
    if tenant.status == TenantStatus.DELETING:
        raise Conflict(f"The workspace {slug!r} is scheduled for deletion and cannot change.")
    if name is not None and name != tenant.name:
        _lifecycle_event(
            session,
            tenant,
            "tenant.rename",
            actor_id,
            details={"before": tenant.name, "after": name},
        )
        tenant.name = name
    if status is not None and status != tenant.status:
        registry.set_status(session, tenant, status)
        action = "tenant.suspend" if status == TenantStatus.SUSPENDED else "tenant.resume"
        _lifecycle_event(session, tenant, action, actor_id)
    session.flush()
    return tenant


def schedule_workspace_deletion(
    session: Session, slug: str, *, actor_id: uuid.UUID | None = None
) -> Tenant:
    tenant = registry.get_by_slug(session, slug, for_update=True)
    if tenant.status != TenantStatus.DELETING:
        registry.schedule_deletion(session, tenant, DELETION_GRACE)
        _lifecycle_event(
            session,
            tenant,
            "tenant.delete",
            actor_id,
            details={
                "delete_after": tenant.delete_after.isoformat() if tenant.delete_after else None
            },
        )
    return tenant


def purge_workspace(session: Session, slug: str, *, actor_id: uuid.UUID | None = None) -> None:
    """Drop a workspace's schema and role now (grace period over, or an operator's order)."""
    tenant = registry.get_by_slug(session, slug, for_update=True)
    _lifecycle_event(session, tenant, "tenant.purge", actor_id, details={"slug": slug})
    drop_tenant(session, tenant)
