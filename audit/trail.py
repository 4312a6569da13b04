"""Appending to a workspace's audit trail, inside the caller's transaction.

Appends are serialised per workspace with a transaction-scoped advisory lock taken before the
chain head is read, so two concurrent writers cannot both link to the same previous event
(a fork); the lock is released at commit, when the new head becomes visible.
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

from audit.chain import GENESIS, canonical, event_hash, personal_digest, timestamp
from audit.models import AuditEvent
from auth.caller import Caller
from helpdesk.core.db import driver_sql
from helpdesk.core.request_context import current_request
from tenants.locks import LOCK_WORKSPACE, LockKey, lock_workspace

# Field names whose values are personal data: kept in ``personal``, erasable, hashed apart.
PERSONAL_FIELDS = frozenset(
    {
        "email",
        "name",
        "phone",
        "company",
        "body",
        "title",
        "description",
        "customer_email",
        "customer_name",
        "path",  # a request path can name a person (/gdpr/subjects/{email}/...)
        "search",  # free text searched for (an export's ``q``) can name a person
    }
)
SECRET_FIELDS = frozenset({"password", "password_hash", "secret", "token", "refresh_token"})
# A key named like a secret is one wherever it sits: a caller may pass a whole body or a nested
# object ("admin_password", {"webhook": {"signing_secret": ...}}) and it must still stay out.
_SECRET_SUFFIXES = ("password", "password_hash", "secret", "_token")
# On the table, not the entity: a Core INSERT, which the ORM's bulk path does not wrap.
_APPEND = insert(cast(Table, AuditEvent.__table__))
_NEXT_LINK = text(
    "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')),"
    " coalesce((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1),"
    "          (SELECT last_hash FROM audit_checkpoints ORDER BY id DESC LIMIT 1), :genesis)"
)


@dataclass(frozen=True, slots=True)
class Actor:
    id: uuid.UUID | None
    email: str | None
    role: str

    @classmethod
    def system(cls, job: str) -> "Actor":
        return cls(id=None, email=None, role=f"system:{job}")


def actor_of(caller: Caller) -> Actor:
    return Actor(id=caller.user_id, email=caller.email, role=caller.role)


def is_secret(field: object) -> bool:
    name = str(field).lower()
    return name in SECRET_FIELDS or name.endswith(_SECRET_SUFFIXES)


def without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list | tuple):
        return [without_secrets(item) for item in value]
    return value


def _split(changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plain: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for field, value in without_secrets(changes).items():
        # Secrets are never recorded, not even as "changed".
        (personal if field in PERSONAL_FIELDS else plain)[field] = value
    return plain, personal


def record_event(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    outcome: str = "success",
    changes: dict[str, Any] | None = None,
    personal_data: bool = False,
) -> AuditEvent:
    lock_workspace(session, LockKey.AUDIT_CHAIN)
    # Read under the lock: the head cannot move until this transaction ends.
    event_id, prev = session.execute(_NEXT_LINK, {"genesis": GENESIS}).one()
    row = _linked_row(
        event_id,
        prev,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        changes=changes,
        personal_data=personal_data,
    )
    # One INSERT, not the ORM's unit of work: every audited request appends, and a flush of
    # one new object costs more than the statement itself (bench/README.md). The event handed
    # back is not in the session; a later query reads the row like any other.
    session.execute(_APPEND, row)
    return AuditEvent(**row)


_LOCK_CHAIN = driver_sql(LOCK_WORKSPACE)
_NEXT_LINK_SQL = driver_sql(_NEXT_LINK)
_APPEND_SQL = driver_sql(_APPEND)


async def append_event(
    connection: psycopg.AsyncConnection[Any],
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    outcome: str = "success",
    changes: dict[str, Any] | None = None,
    personal_data: bool = False,
) -> None:
    """``record_event``'s statements on the request's psycopg connection, for the request
    path (helpdesk.core.db.driver_connection): the same lock, link and row."""
    await connection.execute(_LOCK_CHAIN, {"key": int(LockKey.AUDIT_CHAIN)})
    cursor = await connection.execute(_NEXT_LINK_SQL, {"genesis": GENESIS})
    link = await cursor.fetchone()
    if link is None:
        raise RuntimeError("the audit chain's next link came back empty")
    row = _linked_row(
        link[0],
        link[1],
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        changes=changes,
        personal_data=personal_data,
    )
    # SQLAlchemy's JSONB type serialises with json.dumps too: the row reads back the same.
    row["changes"], row["personal"] = Jsonb(row["changes"]), Jsonb(row["personal"])
    await connection.execute(_APPEND_SQL, row)


def _linked_row(
    event_id: int,
    prev: str,
    *,
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: object,
    outcome: str,
    changes: dict[str, Any] | None,
    personal_data: bool,
) -> dict[str, Any]:
    """The event's row, chained to ``prev``."""
    request = current_request.get()
    # Stored exactly as hashed: JSON types only, so the row reads back identical.
    plain, personal_changes = (json.loads(canonical(part)) for part in _split(changes or {}))
    personal: dict[str, Any] = {
        "actor_email": actor.email,
        "ip": request.ip if request else None,
        "user_agent": request.user_agent if request else None,
    }
    if personal_changes:
        personal["changes"] = personal_changes
    occurred = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": event_id,
        "occurred_at": timestamp(occurred),
        "actor_id": str(actor.id) if actor.id else None,
        "actor_role": actor.role,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "outcome": outcome,
        "request_id": request.request_id if request else None,
        "changes": plain,
        "personal_data": personal_data,
        "personal_digest": personal_digest(personal),
    }
    return {
        "id": event_id,
        "occurred_at": occurred,
        "actor_id": actor.id,
        "actor_role": actor.role,
        "action": action,
        "target_type": target_type,
        "target_id": fields["target_id"],
        "outcome": outcome,
        "request_id": fields["request_id"],
        "changes": plain,
        "personal_data": personal_data,
        "personal": personal,
        "personal_digest": fields["personal_digest"],
        "prev_hash": prev,
        "hash": event_hash(prev, fields),
    }


def chained_fields(event: AuditEvent) -> dict[str, Any]:
    """The event as the chain sees it (the form ``audit.chain`` hashes and verifies)."""
    return {
        "id": event.id,
        "occurred_at": timestamp(event.occurred_at),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_role": event.actor_role,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "changes": event.changes,
        "personal_data": event.personal_data,
        "personal_digest": event.personal_digest,
        "personal": event.personal,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
