"""The tenant registry, in ``public``."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.core.models import PublicBase


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETING = "deleting"


class Tenant(PublicBase):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    schema_name: Mapped[str] = mapped_column(String(63), unique=True)
    role_name: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(16), server_default=TenantStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delete_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PoolSchema(PublicBase):
    """A schema built at the tenant head with its role, not yet any workspace's: provisioning
    claims one by renaming both (``tenants/pool.py``). Not a workspace, so nothing that lists,
    counts or works workspaces sees it; only the migration fan-out does."""

    __tablename__ = "schema_pool"

    schema_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    role_name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
