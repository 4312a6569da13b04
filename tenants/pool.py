"""The schema pool: workspace schemas built ahead of time at the tenant head, with their roles,
so that provisioning renames one instead of building it (DESIGN.md, "Slow provisioning").

The worker's fill job keeps ``size`` of them ready. Provisioning claims the oldest free one
inside its own transaction (``public.helpdesk_provision_tenant``, helpdesk/migrate.py) and builds
from scratch when none is free. A pool schema is not a workspace: it has no row in
``public.tenants``, so nothing that lists, counts or works workspaces sees it; the migration
fan-out migrates it with the workspaces (``pool_schemas``), so it stays at the head.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from helpdesk.core.db import transaction
from tenants.locks import LockKey, try_lock_platform
from tenants.models import PoolSchema

# Apart from every workspace's ``tenant_<slug>``, and random: roles are cluster-wide, so pools of
# two databases on one server must not collide. The owner's build function checks the pattern.
POOL_PREFIX = "pool_"
POOL_NAME_PATTERN = "pool_[0-9a-f]{16}"
# What the migration fan-out reports a pool schema as: no slug may hold a colon.
POOL_LABEL_PREFIX = "pool:"

_BUILD = text("SELECT public.helpdesk_build_pool_schema(:name, :ddl, :head)")
_DROP = text("SELECT public.helpdesk_drop_pool_schema()")


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class PoolFill:
    """One run of the fill job: schemas built, schemas dropped beyond the size, and the pool's
    depth (ready schemas) when it began (``found``: how far claims drained it between runs) and
    when it ended. ``busy``: another process was filling."""

    built: int = 0
    dropped: int = 0
    found: int = 0
    depth: int = 0
    busy: bool = False


def new_pool_name() -> str:
    return POOL_PREFIX + secrets.token_hex(8)


def pool_depth(session: Session | Connection) -> int:
    return int(session.scalar(select(func.count()).select_from(PoolSchema)) or 0)


def pool_schemas(connection: Connection) -> list[tuple[str, str]]:
    """Every pool schema as ``(label, schema name)`` for the migration fan-out."""
    rows = connection.execute(select(PoolSchema.schema_name).order_by(PoolSchema.schema_name))
    return [(POOL_LABEL_PREFIX + schema, schema) for (schema,) in rows]


def build_pool_schema(session: Session, *, ddl: str, head: str) -> str:
    """Add one schema at ``head`` (built by ``ddl``, as provisioning builds one) to the pool."""
    name = new_pool_name()
    session.execute(_BUILD, {"name": name, "ddl": ddl, "head": head})
    return name


def drop_pool_schema(session: Session) -> str | None:
    """Drop the newest pool schema no provisioning is claiming, with its role; its name, or
    None when there is none."""
    dropped: str | None = session.scalar(_DROP)
    return dropped


def fill_pool(
    sessions: sessionmaker[Session],
    *,
    size: int,
    ddl: str,
    head: str,
    stopping: Callable[[], bool] = _never,
) -> PoolFill:
    """Build pool schemas, one transaction each, until ``size`` are ready; drop the newest
    beyond it (the size was lowered). Each transaction takes the platform's pool lock without
    waiting: a process that finds it taken leaves the filling to the one holding it, so two
    processes never both build the last schema the pool needs."""
    built = dropped = 0
    found: int | None = None
    while not stopping():
        with transaction(sessions) as session:
            depth = pool_depth(session)
            found = depth if found is None else found
            if not try_lock_platform(session, LockKey.SCHEMA_POOL):
                return PoolFill(built, dropped, found, depth, busy=True)
            if depth < size:
                build_pool_schema(session, ddl=ddl, head=head)
                built += 1
            elif depth > size and drop_pool_schema(session) is not None:
                dropped += 1
            else:
                return PoolFill(built, dropped, found, depth)
    with transaction(sessions) as session:
        depth = pool_depth(session)
        return PoolFill(built, dropped, depth if found is None else found, depth)


def drain_pool(sessions: sessionmaker[Session]) -> int:
    """Drop every pool schema no provisioning is claiming; how many were dropped."""
    dropped = 0
    while True:
        with transaction(sessions) as session:
            if drop_pool_schema(session) is None:
                return dropped
        dropped += 1
