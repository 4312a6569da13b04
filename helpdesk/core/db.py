"""Engine, sessions and the per-transaction tenant scope.

Tenancy is set with ``set_config(..., is_local => true)`` as the first statement of a transaction:
it ends with the transaction, so a pooled connection (or a PgBouncer server connection) never
carries one request's tenant into the next.
"""

import select
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader
from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler

from helpdesk.core.settings import Settings

_SET_TENANT = text(
    "SELECT set_config('search_path', quote_ident(:schema) || ', public', true),"
    " set_config('role', :role, true)"
)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _connect_args(settings: Settings) -> dict[str, Any]:
    connect_args: dict[str, Any] = {}
    if settings.pgbouncer:
        connect_args["prepare_threshold"] = None
    return connect_args


def make_engine(url: str, settings: Settings) -> Engine:
    """The synchronous engine of jobs, the CLI and the credential routes' executor."""
    engine = create_engine(
        normalise_url(url),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=True,
        connect_args=_connect_args(settings),
    )
    _install_connection_hooks(engine)
    return engine


def make_async_engine(url: str, settings: Settings) -> AsyncEngine:
    """The request path's engine: psycopg's async driver, so waiting on PostgreSQL yields the
    event loop instead of holding a thread. Admission control bounds the wait for a connection
    before the pool is asked, so the pool's own time-out is only a backstop."""
    engine = create_async_engine(
        normalise_url(url),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        # No ping: _discard_if_closed_by_server finds a dead idle connection without one.
        pool_pre_ping=False,
        pool_timeout=settings.pool_wait_seconds,
        connect_args=_connect_args(settings),
    )
    _install_connection_hooks(engine.sync_engine)
    event.listen(engine.sync_engine, "checkout", _discard_if_closed_by_server)
    return engine


def _discard_if_closed_by_server(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A connection that died while idle in the pool (a server restart, a terminated backend)
    is found and replaced at check-out instead of failing the request that drew it.

    Without a round trip: a backend that ends sends its FATAL error and closes the socket, so
    an idle connection whose socket has anything to read is one the server has closed. We
    never LISTEN; the one other message that can arrive unasked is a ParameterStatus after a
    configuration reload, and then a live connection is replaced, which costs one connect.
    pool_pre_ping's SELECT 1 would cost every request a round trip for the same answer. A
    connection that dies after this check fails its request as before: a read is retried
    once, a write answers 503."""
    connection = dbapi_connection.driver_connection
    if connection.closed:
        raise DisconnectionError("the pooled connection is closed")
    readable = select.poll()
    readable.register(connection.pgconn.socket, select.POLLIN)
    if readable.poll(0):
        # The pool invalidates this connection and checks out another (or opens one).
        raise DisconnectionError("the server closed the pooled connection while it was idle")


def _install_connection_hooks(engine: Engine) -> None:
    event.listen(engine, "reset", _reset_connection)
    event.listen(engine, "connect", _load_times_in_utc)


# API.md promises UTC times. psycopg gives a timestamptz the offset of the server's TimeZone
# setting, which is the host's zone unless someone set it; the loaders normalise instead of
# relying on every server's configuration (a session-level SET would not survive the pool's
# RESET ALL, nor be allowed behind PgBouncer).
class _UtcTimestamptzLoader(TimestamptzLoader):
    def load(self, data: Any) -> datetime:
        return super().load(data).astimezone(UTC)


class _UtcTimestamptzBinaryLoader(TimestamptzBinaryLoader):
    def load(self, data: Any) -> datetime:
        return super().load(data).astimezone(UTC)


def _load_times_in_utc(dbapi_connection: Any, record: Any) -> None:
    # The async engine hands over SQLAlchemy's adapter; the psycopg connection is behind it.
    connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    connection.adapters.register_loader("timestamptz", _UtcTimestamptzLoader)
    connection.adapters.register_loader("timestamptz", _UtcTimestamptzBinaryLoader)


def _reset_connection(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
    """Second line of defence behind ``SET LOCAL``: a connection goes back to the pool with
    no transaction and every setting at its default."""
    if reset_state.terminate_only:
        return
    dbapi_connection.rollback()
    dbapi_connection.autocommit = True
    try:
        # RESET ALL leaves the role and session authorization alone, by PostgreSQL's design.
        # Through a cursor: the async engine's adapter, unlike psycopg's connection, has no
        # execute() of its own.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("RESET SESSION AUTHORIZATION; RESET ALL; RESET ROLE")
        finally:
            cursor.close()
    finally:
        dbapi_connection.autocommit = False


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def set_tenant_scope(connection: Connection | Session, schema: str, role: str) -> None:
    """Point this transaction at one tenant's schema and drop to that tenant's role."""
    connection.execute(_SET_TENANT, {"schema": schema, "role": role})


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def tenant_transaction(factory: sessionmaker[Session], schema: str, role: str) -> Iterator[Session]:
    with transaction(factory) as session:
        set_tenant_scope(session, schema, role)
        yield session


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


_DRIVER_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


def driver_sql(statement: ClauseElement) -> str:
    """``statement`` compiled into psycopg's own SQL (``%(name)s`` placeholders) for
    ``driver_connection``: the statement is still written once, as SQLAlchemy, and its
    identifiers quoted by SQLAlchemy. Compile once and keep it; values are sent as they are,
    without SQLAlchemy's type processing."""
    return str(statement.compile(dialect=_DRIVER_DIALECT))


def driver_statement(statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    """``driver_sql`` for a statement that holds its values, with those values by name;
    expanding IN lists become one placeholder per value, as SQLAlchemy would send them."""
    compiled = cast(SQLCompiler, statement.compile(dialect=_DRIVER_DIALECT))
    expanded = compiled.construct_expanded_state()
    return expanded.statement, dict(expanded.parameters)


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under ``session``, in the same transaction. The statements every
    request sends (entering the workspace, the audit append) run on it directly: through the
    session each statement costs several times its own Python in compiling, caching and
    result handling (bench/README.md). Statements run here are not seen by the session, so
    flush it first if it may hold pending changes."""
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    if fairy.driver_connection is None:
        raise DisconnectionError("the request's connection was closed")
    return cast(psycopg.AsyncConnection[Any], fairy.driver_connection)


@asynccontextmanager
async def async_transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The request path's unit of work: commit on success, roll back on any error."""
    async with factory() as session, session.begin():
        yield session
