"""Response bodies of /audit."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from helpdesk.core.input import RequestModel


class AuditActor(BaseModel):
    id: uuid.UUID | None
    email: str | None
    role: str | None


class AuditTarget(BaseModel):
    type: str | None
    id: str | None


class AuditEventOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: AuditActor
    action: str
    target: AuditTarget
    outcome: str
    request_id: str | None
    ip: str | None
    user_agent: str | None
    changes: dict[str, Any]
    personal_data: bool
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class AuditFilterParams(RequestModel):
    actor_id: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=64)
    target_type: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    outcome: Literal["success", "denied", "error"] | None = None
    since: datetime | None = None
    until: datetime | None = None


class VerifyOut(BaseModel):
    valid: bool
    events_checked: int
    first_invalid_id: int | None
    # Kept by whoever checks: the chain alone cannot show that its newest events were cut off,
    # but a head noted earlier that no longer comes back (nor appears in a later export) can.
    chain_head: str = Field(
        description="The hash the verified chain ends at: the last event's before this check's "
        "own event (on a broken chain, the last good link). Compare it with an export's "
        "X-Audit-Chain-Head."
    )
