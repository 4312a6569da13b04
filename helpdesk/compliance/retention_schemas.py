"""Request and response bodies of /retention."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from helpdesk.core.input import RequestModel

# Up to a century; null keeps that kind of data for ever.
Days = Annotated[int, Field(ge=1, le=36_500)]


class RetentionPolicyIn(RequestModel):
    """The new policy. A field left out keeps its current value; a null number of days means
    "never purge"."""

    model_config = ConfigDict(extra="forbid")

    closed_ticket_days: Days | None = None
    audit_event_days: Days | None = None
    legal_hold: bool = False


class RetentionPolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    closed_ticket_days: int | None
    audit_event_days: int | None
    legal_hold: bool
    updated_at: datetime | None = None


class RetentionReportOut(BaseModel):
    """What a run removed (or, for a dry run, would remove). ``legal_hold`` true means the run
    removed nothing because of the hold. Comments go with their tickets; ``checkpoints`` is how
    many audit chain checkpoints the purge wrote."""

    model_config = ConfigDict(from_attributes=True)

    workspace: str
    dry_run: bool
    legal_hold: bool
    closed_ticket_days: int | None
    audit_event_days: int | None
    ticket_cutoff: datetime | None
    audit_cutoff: datetime | None
    tickets: int
    comments: int
    audit_events: int
    batches: int
    checkpoints: int
