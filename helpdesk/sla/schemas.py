"""Request and response bodies of /settings."""

import re
from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from helpdesk.core.input import RequestModel
from helpdesk.customers.phones import is_region
from helpdesk.customers.schemas import CustomerTier
from helpdesk.tickets.schemas import TicketPriority

# Hours to first response: from a minute to a year.
SlaHours = Annotated[float, Field(gt=0, le=8784)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone such as 'Europe/Berlin'") from exc
    return name


def _weekdays(days: str) -> str:
    if not re.fullmatch(r"[1-7]{1,7}", days) or len(set(days)) != len(days):
        raise ValueError("business days are ISO weekday digits, Monday 1 to Sunday 7, each once")
    return "".join(sorted(days))


def _wall_clock(value: time) -> time:
    # Business hours are read in the workspace's time zone; an offset would contradict it (and
    # an aware time cannot be compared with the naive ones stored).
    if value.tzinfo is not None:
        raise ValueError(
            "a business time is a wall-clock time such as 09:00, without an offset: "
            "the workspace's time zone places it."
        )
    return value


# Not JSON Schema's `format: time`: that is RFC 3339's full-time, which requires an offset
# ("09:00:00Z"), and a business time has none. The document says what is served ("09:00:00")
# and accepted ("09:00", "09:00:00", "09:00:00.5").
WALL_CLOCK_SCHEMA = {
    "type": "string",
    "format": "partial-time",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "description": "A wall-clock time without an offset, in the workspace's time zone.",
}
BusinessTime = Annotated[time, AfterValidator(_wall_clock), WithJsonSchema(WALL_CLOCK_SCHEMA)]


class PolicyCell(RequestModel):
    """One tier's targets for one priority; a target left out follows the tier's default."""

    model_config = ConfigDict(extra="forbid")

    first_response_hours: SlaHours | None = None
    resolution_hours: SlaHours | None = None


def _phone_region(code: str) -> str:
    code = code.upper()
    if not is_region(code):
        raise ValueError(
            f"{code!r} is not a region phone numbers are dialled in: give a two-letter ISO 3166 "
            "country code such as 'US' or 'GB'"
        )
    return code


class WorkspaceSettingsIn(RequestModel):
    """The new settings. A field left out keeps its current value."""

    model_config = ConfigDict(extra="forbid")

    sla_hours: dict[TicketPriority, SlaHours] | None = Field(
        default=None,
        description="Hours to first response by priority; a priority left out uses the default "
        "(critical 1, high 4, medium 24, low 72).",
    )
    sla_policies: dict[CustomerTier, dict[TicketPriority, PolicyCell]] | None = Field(
        default=None,
        description="Overrides of the tier policies, replacing any saved before. A cell left "
        "out follows its tier: basic uses sla_hours and the default resolution hours (critical "
        "4, high 24, medium 72, low 168); free twice basic, premium half, enterprise a quarter.",
    )
    business_hours_only: bool | None = None
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)] | None = None
    business_start: BusinessTime | None = None
    business_end: BusinessTime | None = None
    business_days: Annotated[str, Field(max_length=7), AfterValidator(_weekdays)] | None = None
    auto_assign: bool | None = None
    auto_assign_min_priority: TicketPriority | None = Field(
        default=None,
        description="Auto-assignment takes only tickets of this priority or higher "
        "(default low: every ticket).",
    )
    auto_close_days: (
        Annotated[int, Field(ge=0, le=3650, description="0 turns auto-close off.")] | None
    ) = None
    phone_region: (
        Annotated[
            str,
            Field(
                min_length=2,
                max_length=2,
                description="Where a customer's phone number written without a country code "
                "is dialled: a two-letter ISO 3166 code (default US).",
            ),
            AfterValidator(_phone_region),
        ]
        | None
    ) = None


class TargetHours(BaseModel):
    first_response_hours: float
    resolution_hours: float


class WorkspaceSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sla_hours: dict[str, float]
    sla_policies: dict[str, dict[str, dict[str, float]]] = Field(
        description="The overrides saved, as PUT takes them."
    )
    sla_targets: dict[str, dict[str, TargetHours]] = Field(
        description="What applies: every tier's targets for every priority, in hours."
    )
    business_hours_only: bool
    timezone: str
    business_start: BusinessTime
    business_end: BusinessTime
    business_days: str
    auto_assign: bool
    auto_assign_min_priority: TicketPriority
    auto_close_days: int
    phone_region: str
    updated_at: datetime | None = None
