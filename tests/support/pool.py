"""The schema pool in tests: filled by a test that wants one, drained when it is done.

The suite runs without a pool (``schema_pool_size=0`` in the settings fixture), so every other
test provisions by building and finds the pool empty. A test that fills one drains it on the way
out: the schemas and their roles are dropped, and no later test of the same database claims a
schema it did not expect (``drop_run_roles`` would drop a role left behind at the end of the
run, but not its schema in a database that lives on).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from migrations.models import tenant_ddl
from tenants.models import PoolSchema
from tenants.pool import PoolFill, drain_pool, fill_pool
from tenants.schema import tenant_head


def fill(runtime: Runtime, size: int) -> PoolFill:
    return fill_pool(runtime.sessions, size=size, ddl=tenant_ddl(), head=tenant_head())


def pool_names(runtime: Runtime) -> list[str]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(PoolSchema.schema_name).order_by(PoolSchema.created_at)))


@contextmanager
def filled_pool(runtime: Runtime, size: int) -> Iterator[list[str]]:
    """A pool of ``size`` ready schemas (their names, oldest first), drained afterwards."""
    drain_pool(runtime.sessions)
    try:
        fill(runtime, size)
        yield pool_names(runtime)
    finally:
        drain_pool(runtime.sessions)
