"""Reading a workspace's audit trail: filtered pages, verification, the API's event shape."""

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from audit.chain import GENESIS, Verdict, verify_chain
from audit.models import AuditCheckpoint, AuditEvent
from audit.trail import chained_fields


@dataclass(frozen=True, slots=True)
class EventFilters:
    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def filtered(filters: EventFilters) -> Select[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if filters.actor_id:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.target_type:
        query = query.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditEvent.target_id == filters.target_id)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.occurred_at < filters.until)
    return query


def page(
    session: Session, filters: EventFilters, *, after_id: int | None, limit: int
) -> Sequence[AuditEvent]:
    query = filtered(filters).limit(limit)
    if after_id is not None:
        query = query.where(AuditEvent.id > after_id)
    return session.scalars(query).all()


def event_document(event: AuditEvent) -> dict[str, Any]:
    """An event as API.md shows it; personal values appear while they are still held."""
    personal = event.personal or {}
    changes = {**event.changes, **personal.get("changes", {})}
    return {
        "id": event.id,
        "occurred_at": event.occurred_at,
        "actor": {
            "id": event.actor_id,
            "email": personal.get("actor_email"),
            "role": event.actor_role,
        },
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id},
        "outcome": event.outcome,
        "request_id": event.request_id,
        "ip": personal.get("ip"),
        "user_agent": personal.get("user_agent"),
        "changes": changes,
        "personal_data": event.personal_data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def chain_start(session: Session) -> str:
    """The hash the oldest remaining event links to: genesis, or the last purge checkpoint."""
    last = session.scalar(
        select(AuditCheckpoint.last_hash).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    return last or GENESIS


def stream_events(session: Session, query: Select[AuditEvent]) -> Iterator[AuditEvent]:
    """Events through a server-side cursor, a batch at a time, in constant memory."""
    result = session.execute(query.execution_options(yield_per=1000))
    try:
        for event in result.scalars():
            yield event
            session.expunge(event)
    finally:
        # Close the server-side cursor even when the caller stops early.
        result.close()


def verify_workspace(session: Session) -> Verdict:
    start = chain_start(session)
    events = (
        chained_fields(e)
        for e in stream_events(session, select(AuditEvent).order_by(AuditEvent.id))
    )
    return verify_chain(events, start)
