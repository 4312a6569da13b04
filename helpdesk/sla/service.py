"""SLA due times and the workspace settings that shape them."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from helpdesk.core.errors import InvalidInput
from helpdesk.customers.phones import DEFAULT_REGION
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.sla.policy import longest_hours


def load_settings(session: Session) -> WorkspaceSettings:
    """The workspace's settings row, or the product defaults when it has never saved any."""
    row = session.scalars(select(WorkspaceSettings)).one_or_none()
    return row if row is not None else WorkspaceSettings(**DEFAULT_SETTINGS)


# Mirrors the table's server defaults, for a workspace that has not saved its settings yet.
DEFAULT_SETTINGS: dict[str, object] = {
    "id": 1,
    "sla_hours": {},
    "sla_policies": {},
    "business_hours_only": False,
    "timezone": "UTC",
    "business_start": time(9, 0),
    "business_end": time(17, 0),
    "business_days": "12345",
    "auto_assign": False,
    "auto_assign_min_priority": "low",
    "auto_close_days": 7,
    "phone_region": DEFAULT_REGION,
}


def update_settings(
    session: Session, changes: dict[str, Any]
) -> tuple[WorkspaceSettings, dict[str, Any]]:
    """Apply ``changes`` (fields of WorkspaceSettingsIn; a null leaves the field alone) and
    return the settings with ``{field: {before, after}}`` for what really changed. New
    tickets get due times from the new settings; existing tickets keep theirs."""
    session.execute(pg_insert(WorkspaceSettings).values(id=1).on_conflict_do_nothing())
    settings = session.scalars(select(WorkspaceSettings).with_for_update()).one()
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            continue
        before = getattr(settings, field)
        if before != value:
            setattr(settings, field, value)
            diff[field] = {"before": _plain(before), "after": _plain(value)}
    if settings.business_start >= settings.business_end:
        raise InvalidInput(
            "business_start must be before business_end (business hours within one day).",
            field="business_end",
        )
    problem = business_time_problem(settings)
    if problem:
        raise InvalidInput(problem)
    if diff:
        settings.updated_at = datetime.now(UTC)
    session.flush()
    return settings, diff


def _plain(value: object) -> object:
    # The audit trail stores JSON: times as "09:00:00".
    return value.isoformat() if isinstance(value, time) else value


def due_after(start: datetime, budget: timedelta, settings: WorkspaceSettings) -> datetime:
    """When a target of ``budget`` counted from ``start`` falls due: wall-clock time, or
    business hours in the workspace's time zone when the workspace counts only those."""
    if not settings.business_hours_only:
        return start + budget
    return _add_business_time(start, budget, settings)


def resume_due(
    due: datetime, paused_at: datetime, now: datetime, settings: WorkspaceSettings
) -> datetime:
    """The due time once a clock paused at ``paused_at`` runs again at ``now``: what was left
    at the pause, counted from now (in business hours where the workspace counts those). A
    target already missed at the pause stays missed."""
    if paused_at >= due:
        return due
    if not settings.business_hours_only:
        return now + (due - paused_at)
    return _add_business_time(now, _business_time_between(paused_at, due, settings), settings)


# How far ahead _add_business_time looks for the end of a budget.
_HORIZON_DAYS = 3660
# What the settings must fit in that horizon: fewer weeks than it holds, because a
# daylight-saving jump can take one day's business hours (at most twice a year).
_FITTING_WEEKS = 500


def business_time_problem(settings: WorkspaceSettings) -> str | None:
    """Why some priority's due time could not be computed under ``settings``, or None. A PUT
    that saves such settings would make every later ticket of that priority fail."""
    days = {d for d in settings.business_days if d.isdigit()}
    if not days or settings.business_start >= settings.business_end:
        return (
            "The business hours hold no time at all; name business days and a start before the end."
        )
    if not settings.business_hours_only:
        return None
    opening = datetime.combine(date.min, settings.business_end) - datetime.combine(
        date.min, settings.business_start
    )
    weekly = opening * len(days)
    longest = longest_hours(settings)
    if timedelta(hours=longest) > weekly * _FITTING_WEEKS:
        return (
            f"Counted in business hours ({weekly.total_seconds() / 3600:g} a week), the longest "
            f"SLA ({longest:g} hours) would end more than {_FITTING_WEEKS} weeks away; widen the "
            "business hours or shorten the SLA."
        )
    return None


def _add_business_time(start: datetime, budget: timedelta, settings: WorkspaceSettings) -> datetime:
    zone = ZoneInfo(settings.timezone)
    days = {int(d) for d in settings.business_days if d.isdigit()}
    if not days or settings.business_start >= settings.business_end:
        return start + budget
    cursor = start.astimezone(zone)
    remaining = budget
    # Walk day by day; at most a few hundred iterations even for a 72-hour budget over holidays.
    for _ in range(_HORIZON_DAYS):
        day_open = datetime.combine(cursor.date(), settings.business_start, zone)
        day_close = datetime.combine(cursor.date(), settings.business_end, zone)
        if cursor.isoweekday() in days and cursor < day_close:
            begin = max(cursor, day_open)
            available = day_close - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        next_day = cursor.date() + timedelta(days=1)
        cursor = datetime.combine(next_day, settings.business_start, zone)
    raise ValueError("no business hours within ten years; check the workspace's business days")


def _business_time_between(
    start: datetime, end: datetime, settings: WorkspaceSettings
) -> timedelta:
    """Business time from ``start`` to ``end`` in the workspace's time zone."""
    zone = ZoneInfo(settings.timezone)
    days = {int(d) for d in settings.business_days if d.isdigit()}
    cursor, finish = start.astimezone(zone), end.astimezone(zone)
    total = timedelta(0)
    for _ in range(_HORIZON_DAYS):
        if cursor >= finish:
            break
        day_open = datetime.combine(cursor.date(), settings.business_start, zone)
        day_close = datetime.combine(cursor.date(), settings.business_end, zone)
        if cursor.isoweekday() in days:
            begin, stop = max(cursor, day_open), min(day_close, finish)
            if stop > begin:
                total += stop - begin
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time(0), zone)
    return total
