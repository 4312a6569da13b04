"""SLA policies: the first-response and resolution targets of each customer tier and priority.

``basic`` is the reference: its first-response hours are the product's (critical 1, high 4,
medium 24, low 72, or the workspace's ``sla_hours``) and its resolution hours critical 4, high 24,
medium 72, low 168. Other tiers scale the reference: ``free`` twice as long, ``premium`` half,
``enterprise`` a quarter. A workspace may override any cell (``sla_policies``); a tier's unset
cells follow the workspace's own basic targets, so raising basic raises the others with it.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from helpdesk.customers.schemas import CustomerTier
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.tickets.schemas import TicketPriority

DEFAULT_FIRST_RESPONSE_HOURS: dict[str, float] = {
    "critical": 1,
    "high": 4,
    "medium": 24,
    "low": 72,
}
DEFAULT_RESOLUTION_HOURS: dict[str, float] = {
    "critical": 4,
    "high": 24,
    "medium": 72,
    "low": 168,
}
TIER_FACTORS: dict[str, float] = {
    CustomerTier.FREE: 2.0,
    CustomerTier.BASIC: 1.0,
    CustomerTier.PREMIUM: 0.5,
    CustomerTier.ENTERPRISE: 0.25,
}
Target = Literal["first_response_hours", "resolution_hours"]
TARGETS: tuple[Target, ...] = ("first_response_hours", "resolution_hours")


@dataclass(frozen=True, slots=True)
class Targets:
    first_response: timedelta
    resolution: timedelta


def _basic_hours(settings: WorkspaceSettings, priority: str, target: Target) -> float:
    cell = (settings.sla_policies or {}).get(CustomerTier.BASIC, {}).get(priority, {})
    if target in cell:
        return float(cell[target])
    if target == "first_response_hours":
        legacy = (settings.sla_hours or {}).get(priority)
        if legacy is not None:
            return float(legacy)
        return DEFAULT_FIRST_RESPONSE_HOURS[priority]
    return DEFAULT_RESOLUTION_HOURS[priority]


def target_hours(settings: WorkspaceSettings, tier: str, priority: str, target: Target) -> float:
    """Hours of ``target`` for a ``tier`` customer's ``priority`` ticket under ``settings``."""
    cell = (settings.sla_policies or {}).get(tier, {}).get(priority, {})
    if target in cell:
        return float(cell[target])
    return _basic_hours(settings, priority, target) * TIER_FACTORS[tier]


def targets(settings: WorkspaceSettings, tier: str, priority: str) -> Targets:
    return Targets(
        first_response=timedelta(
            hours=target_hours(settings, tier, priority, "first_response_hours")
        ),
        resolution=timedelta(hours=target_hours(settings, tier, priority, "resolution_hours")),
    )


def policy_table(settings: WorkspaceSettings) -> dict[str, dict[str, dict[str, float]]]:
    """Every tier's targets for every priority, as the workspace's settings make them."""
    return {
        tier.value: {
            priority.value: {
                target: target_hours(settings, tier.value, priority.value, target)
                for target in TARGETS
            }
            for priority in TicketPriority
        }
        for tier in CustomerTier
    }


def longest_hours(settings: WorkspaceSettings) -> float:
    return max(
        hours
        for priorities in policy_table(settings).values()
        for cell in priorities.values()
        for hours in cell.values()
    )
