"""Reads and status changes on the tenant registry."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.core.errors import Forbidden, NotFound
from tenants.context import TenantRef
from tenants.models import Tenant, TenantStatus
from tenants.slugs import SLUG_PATTERN


def to_ref(tenant: Tenant) -> TenantRef:
    return TenantRef(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        schema_name=tenant.schema_name,
        role_name=tenant.role_name,
        status=tenant.status,
    )


def unavailable(slug: str, status: str) -> Forbidden:
    """The refusal for a workspace that is not active. API.md gives one code to a workspace its
    members cannot use, so a workspace being deleted answers it too; the detail says which."""
    state = "being deleted" if status == TenantStatus.DELETING else status
    return Forbidden(
        f"The workspace {slug!r} is {state}; contact your administrator.",
        code="tenant_suspended",
    )


def get_by_slug(session: Session, slug: str, *, for_update: bool = False) -> Tenant:
    # A string that breaks the slug rule names no workspace; it never reaches the database,
    # which would refuse some of them (a NUL) with an error rather than an empty answer.
    if not SLUG_PATTERN.fullmatch(slug):
        raise NotFound(f"No workspace has the slug {slug!r}.", code="tenant_not_found")
    query = select(Tenant).where(Tenant.slug == slug)
    if for_update:
        query = query.with_for_update()
    tenant = session.scalars(query).one_or_none()
    if tenant is None:
        raise NotFound(f"No workspace has the slug {slug!r}.", code="tenant_not_found")
    return tenant


def get_by_id(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def list_tenants(
    session: Session, *, after: str | None = None, limit: int = 50
) -> Sequence[Tenant]:
    query = select(Tenant).order_by(Tenant.slug).limit(limit)
    if after is not None:
        query = query.where(Tenant.slug > after)
    return session.scalars(query).all()


def set_status(session: Session, tenant: Tenant, status: TenantStatus) -> Tenant:
    tenant.status = status.value
    tenant.updated_at = datetime.now(UTC)
    tenant.delete_after = None
    session.flush()
    return tenant


def schedule_deletion(session: Session, tenant: Tenant, grace: timedelta) -> Tenant:
    now = datetime.now(UTC)
    tenant.status = TenantStatus.DELETING.value
    tenant.updated_at = now
    tenant.delete_after = now + grace
    session.flush()
    return tenant
