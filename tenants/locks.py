"""Every PostgreSQL advisory-lock key the application takes, in one place.

A workspace's locks use the two-key form ``(hashtext(current_schema()), key)``: the first key
names the workspace (the transaction's search_path points at its schema), the second says what
is locked, so the same ``LockKey`` in two workspaces are two different locks. All of them are
transaction-scoped (``pg_advisory_xact_lock``): released at commit or rollback, so a crashed
process cannot leave one behind, and safe behind PgBouncer in transaction mode, where a
session-level lock could stay on a server connection that another client then borrows.

The values are part of the contract with any process still running an older release (a rolling
deploy) and with tools that take the same locks (``bench/tickets.py`` takes the chain lock by
number): never renumber one, only add.
"""

from enum import IntEnum, unique

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session


@unique  # two names for one number would be one lock serialising unrelated work
class LockKey(IntEnum):
    # Per workspace, the second key of (hashtext(schema), key).
    ASSIGNMENT = 1  # auto-assignment reads the agents' load and picks one
    AUDIT_CHAIN = 3  # appending to the audit hash chain: read the head, link, insert
    RETENTION = 5  # a retention run, from a request or the job
    ESCALATION = 11  # the escalation job
    AUTO_CLOSE = 12  # the auto-close job
    DELIVERY = 13  # the delivery (webhooks and e-mail) job
    TENANT_MIGRATION = 14  # upgrading the workspace's schema on the tenant track
    # Platform-wide, the one-key form: a separate key space from the two-key form in PostgreSQL,
    # so it can never collide with a workspace's lock.
    MIGRATIONS = 7_311_001  # `helpdesk migrate` and startup: one migrating process at a time
    SCHEMA_POOL = 7_311_002  # filling the schema pool: one process at a time, or both overshoot


LOCK_WORKSPACE = text("SELECT pg_advisory_xact_lock(hashtext(current_schema()), :key)")
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), :key)")
_LOCK_PLATFORM = text("SELECT pg_advisory_xact_lock(:key)")
_TRY_LOCK_PLATFORM = text("SELECT pg_try_advisory_xact_lock(:key)")


def lock_workspace(session: Session, key: LockKey) -> None:
    """Wait for the workspace's ``key`` lock and hold it until this transaction ends.

    ``session`` must already be in the workspace's scope (its search_path)."""
    session.execute(LOCK_WORKSPACE, {"key": int(key)})


def try_lock_workspace(session: Session, key: LockKey) -> bool:
    """Take the workspace's ``key`` lock for this transaction if no one else holds it; never
    waits. True also when this transaction already holds it (advisory locks are reentrant)."""
    return bool(session.scalar(_TRY_LOCK, {"key": int(key)}))


def lock_platform(connection: Connection | Session, key: LockKey) -> None:
    """Wait for a platform-wide lock and hold it until this transaction ends."""
    connection.execute(_LOCK_PLATFORM, {"key": int(key)})


def try_lock_platform(connection: Connection | Session, key: LockKey) -> bool:
    """Take a platform-wide lock for this transaction if no one else holds it; never waits."""
    return bool(connection.scalar(_TRY_LOCK_PLATFORM, {"key": int(key)}))
