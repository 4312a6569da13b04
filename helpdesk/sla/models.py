"""Per-workspace settings that drive SLA, assignment, the ticket jobs and phone numbers (one
row)."""

from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.core.models import TenantBase


class WorkspaceSettings(TenantBase):
    __tablename__ = "workspace_settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    # Hours to first response by priority; missing keys fall back to the product defaults.
    sla_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # Overrides of the tier policies: {tier: {priority: {first_response_hours, resolution_hours}}}.
    sla_policies: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    business_hours_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    business_start: Mapped[time] = mapped_column(Time, server_default=text("'09:00'"))
    business_end: Mapped[time] = mapped_column(Time, server_default=text("'17:00'"))
    # ISO weekdays, Monday = 1.
    business_days: Mapped[str] = mapped_column(String(16), server_default="12345")
    auto_assign: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Tickets below this priority are left for people to pick up (``low``: every ticket).
    auto_assign_min_priority: Mapped[str] = mapped_column(String(16), server_default="low")
    auto_close_days: Mapped[int] = mapped_column(Integer, server_default=text("7"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Where a phone number written without a country code is dialled (ISO 3166-1 alpha-2).
    # After updated_at, as migration t0007 added it.
    phone_region: Mapped[str] = mapped_column(String(2), server_default="US")
