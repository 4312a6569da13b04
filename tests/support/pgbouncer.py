"""A throwaway PgBouncer in transaction pooling mode, in front of the suite's PostgreSQL.

Each call gets its own temporary directory and loopback port, so xdist workers never share one.
The upstream may be a unix socket (the embedded server) or TCP (``TEST_DATABASE_URL``, Docker).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

INSTALL_HINT = (
    "PgBouncer is not installed: `apt-get install pgbouncer` (Debian/Ubuntu; then "
    "`service pgbouncer stop`, the tests start their own), or put `pgbouncer` on PATH"
)
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
START_ATTEMPTS = 3
# libpq's compiled-in socket directory on Debian, used when a URL names no host.
DEFAULT_SOCKET_DIR = "/var/run/postgresql"


class PgBouncerUnavailable(RuntimeError):
    """PgBouncer cannot run here; the message says why and how to fix it."""


class PgBouncerError(RuntimeError):
    """PgBouncer was found but did not start or stop as expected."""


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def is_unix_socket(self) -> bool:
        return self.host.startswith("/")


@dataclass(frozen=True)
class PgBouncer:
    port: int
    dbname: str
    user: str
    password: str
    pool_size: int
    directory: Path

    def url(self, driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL for the pooled database."""
        return (
            make_url(f"{driver}://127.0.0.1")
            .set(
                port=self.port,
                database=self.dbname,
                username=self.user,
                password=self.password or None,
            )
            .render_as_string(hide_password=False)
        )

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string (psycopg), for the pooled database or the admin console."""
        return make_conninfo(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname or self.dbname,
            user=self.user,
            password=self.password or None,
            connect_timeout=5,
        )

    def show(self, what: str) -> list[dict[str, Any]]:
        """Rows of the admin console's ``SHOW <what>`` (e.g. SERVERS, POOLS, CONFIG)."""
        if not what.isalpha():
            raise ValueError(f"not a SHOW target: {what!r}")
        # The admin console speaks only the simple query protocol: bind nothing server-side.
        with (
            psycopg.connect(
                self.conninfo("pgbouncer"),
                autocommit=True,
                prepare_threshold=None,
                cursor_factory=psycopg.ClientCursor,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(f"SHOW {what}")
            names = [column.name for column in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def find_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    # Debian installs it in sbin, which an unprivileged PATH often lacks.
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _query_value(value: str | tuple[str, ...] | None) -> str | None:
    if isinstance(value, tuple):
        if len(value) != 1:
            raise PgBouncerError(f"several values {value!r}: PgBouncer needs one upstream")
        return value[0]
    return value


def upstream_of(url: str) -> Upstream:
    """Where ``url`` (libpq or SQLAlchemy form, unix socket or TCP) points."""
    parsed = make_url(url)
    # libpq URLs name a unix socket directory in the query: postgresql://u@/db?host=/dir
    host = parsed.host or _query_value(parsed.query.get("host")) or DEFAULT_SOCKET_DIR
    port = parsed.port or _query_value(parsed.query.get("port")) or 5432
    if "," in host:
        raise PgBouncerError(f"several hosts in {host!r}: PgBouncer needs one upstream")
    return Upstream(
        host=host,
        port=int(port),
        user=parsed.username or "postgres",
        password=parsed.password or "",
        dbname=parsed.database or "postgres",
    )


def _run_as(upstream: Upstream) -> pwd.struct_passwd | None:
    """The OS user PgBouncer runs as: itself unless root, since PgBouncer refuses root."""
    if os.geteuid() != 0:
        return None
    candidates: list[str] = []
    if upstream.is_unix_socket:
        # The embedded server's socket sits in its 0700 data directory: only its owner gets in.
        owner = pwd.getpwuid(Path(upstream.host).stat().st_uid)
        if owner.pw_uid != 0:
            return owner
        candidates.append("postgres")
    candidates.append("nobody")
    for name in candidates:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PgBouncerUnavailable(
        "running as root, and no non-root user (postgres, nobody) exists to run PgBouncer as"
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _write_config(directory: Path, upstream: Upstream, port: int, pool_size: int) -> Path:
    server = (
        f"host={_quote(upstream.host)} port={upstream.port} dbname={_quote(upstream.dbname)} "
        f"user={_quote(upstream.user)}"
    )
    if upstream.password:
        server += f" password={_quote(upstream.password)}"
    userlist = directory / "userlist.txt"
    user = upstream.user.replace('"', '""')
    password = upstream.password.replace('"', '""')
    userlist.write_text(f'"{user}" "{password}"\n')
    ini = directory / "pgbouncer.ini"
    # server_reset_query stays empty (the transaction-mode default): a setting that leaks from
    # one transaction must stay visible to the next client, or the test could not see it.
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                f"{upstream.dbname} = {server}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {userlist}",
                f"admin_users = {upstream.user}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 500",
                "server_reset_query =",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    return ini


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # SIGTERM is PgBouncer's immediate shutdown: the test has finished with every client.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_SECONDS)


def _read(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def _wait_ready(process: subprocess.Popen[bytes], bouncer: PgBouncer) -> str | None:
    """None once PgBouncer serves the database, else why not."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode}"
        try:
            with psycopg.connect(
                bouncer.conninfo(), prepare_threshold=None, autocommit=True
            ) as conn:
                conn.execute("SELECT 1").fetchone()
            return None
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip()
            time.sleep(0.05)
    return f"accepted no connection within {START_TIMEOUT_SECONDS}s ({last_error})"


@contextmanager
def running_pgbouncer(database_url: str, *, pool_size: int) -> Iterator[PgBouncer]:
    """Run PgBouncer for ``database_url``'s database until the block ends.

    Raises ``PgBouncerUnavailable`` when the binary is missing or cannot run here.
    """
    binary = find_binary()
    if binary is None:
        raise PgBouncerUnavailable(INSTALL_HINT)
    upstream = upstream_of(database_url)
    user = _run_as(upstream)
    directory = Path(tempfile.mkdtemp(prefix="helpdesk-pgbouncer-"))
    try:
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        for _attempt in range(START_ATTEMPTS):
            port = _free_port()
            ini = _write_config(directory, upstream, port, pool_size)
            if user is not None:
                for path in (ini, directory / "userlist.txt"):
                    os.chown(path, user.pw_uid, user.pw_gid)
            command = [binary, *(["-u", user.pw_name] if user is not None else []), str(ini)]
            bouncer = PgBouncer(
                port=port,
                dbname=upstream.dbname,
                user=upstream.user,
                password=upstream.password,
                pool_size=pool_size,
                directory=directory,
            )
            # The log stays ours (opened before PgBouncer drops privileges): read on failure.
            with (directory / f"pgbouncer-{port}.log").open("w+b") as log:
                process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
                try:
                    failure = _wait_ready(process, bouncer)
                    if failure is None:
                        yield bouncer
                        return
                finally:
                    _stop(process)
                output = _read(log)
            # Another process took the port between probing and binding: pick another.
            if "Address already in use" not in output:
                raise PgBouncerError(f"PgBouncer {failure}:\n{output}")
        raise PgBouncerError(f"PgBouncer found no free port in {START_ATTEMPTS} attempts")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
