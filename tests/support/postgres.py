"""Where the test suite's PostgreSQL comes from, and the per-worker databases on it.

Provider chain (DESIGN.md "Tests"): ``TEST_DATABASE_URL``, else a Docker engine via
testcontainers, else an embedded server from pip.
``HELPDESK_TEST_PG=url|docker|embedded`` forces one. ``HELPDESK_TEST_DB_PREFIX`` (default
``helpdesk_test``) names the template and the per-worker databases, so that two runs can share one
server without dropping each other's databases.

The suite logs in as the application does (README "Database roles"): a run creates an owner role
``<prefix>_owner`` that migrates and owns the databases and a service role ``<prefix>_service``
that the app and the runtime under test use; ``drop_run_roles`` removes them, and every tenant
role the run's owner made, at the end (roles are cluster-wide and outlive the databases).
"""

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

Provider = Literal["url", "docker", "embedded"]
PROVIDERS: tuple[Provider, ...] = ("url", "docker", "embedded")
DEFAULT_DB_PREFIX = "helpdesk_test"
# Leaves room for "_template" and an xdist worker id within PostgreSQL's 63-byte names.
_DB_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DOCKER_IMAGE = "postgres:16-alpine"


class ProviderError(RuntimeError):
    pass


def choose_provider(env: Mapping[str, str], docker_available: Callable[[], bool]) -> Provider:
    forced = env.get("HELPDESK_TEST_PG", "").strip()
    if forced:
        if forced not in PROVIDERS:
            raise ProviderError(
                f"HELPDESK_TEST_PG={forced!r}: choose one of {', '.join(PROVIDERS)}"
            )
        if forced == "url" and not env.get("TEST_DATABASE_URL"):
            raise ProviderError("HELPDESK_TEST_PG=url needs TEST_DATABASE_URL")
        return forced  # type: ignore[return-value]
    if env.get("TEST_DATABASE_URL"):
        return "url"
    if docker_available():
        return "docker"
    return "embedded"


def database_prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("HELPDESK_TEST_DB_PREFIX", "").strip() or DEFAULT_DB_PREFIX
    if not _DB_PREFIX.fullmatch(prefix):
        raise ProviderError(
            f"HELPDESK_TEST_DB_PREFIX={prefix!r}: use 1 to 40 lowercase letters, digits or "
            "underscores, starting with a letter"
        )
    return prefix


def template_name(prefix: str) -> str:
    return f"{prefix}_template"


def worker_database_name(prefix: str, worker: str) -> str:
    return f"{prefix}_{worker}"


def docker_available() -> bool:
    """Ask the Docker engine for a ping; without one this fails in milliseconds."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


@dataclass
class Server:
    """A running PostgreSQL server: an admin URL (libpq form) and a way to stop it."""

    provider: Provider
    admin_url: str
    stop: Callable[[], None]

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def janitor_args(self) -> dict[str, Any]:
        parts = urlsplit(self.admin_url)
        host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
        return {
            "user": parts.username or "postgres",
            "password": parts.password,
            "host": host,
            "port": parts.port or 5432,
            "maintenance_dbname": parts.path.lstrip("/") or "postgres",
        }


def start_server(provider: Provider, env: Mapping[str, str]) -> Server:
    if provider == "url":
        url = env["TEST_DATABASE_URL"]
        return Server("url", _libpq(url), lambda: None)
    if provider == "docker":
        from testcontainers.community.postgres import PostgresContainer

        container = PostgresContainer(DOCKER_IMAGE, driver=None)
        container.start()
        return Server("docker", container.get_connection_url(), container.stop)
    from helpdesk.core.embedded import EmbeddedPostgres

    home = Path(tempfile.mkdtemp(prefix="helpdesk-test-pg-"))
    embedded = EmbeddedPostgres(home / "pgdata", delete_on_stop=True)

    def stop() -> None:
        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)

    return Server("embedded", embedded.libpq_url(), stop)


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(libpq_url: str) -> str:
    return (
        make_url(libpq_url)
        .set(drivername="postgresql+psycopg")
        .render_as_string(hide_password=False)
    )


@dataclass(frozen=True)
class RunRoles:
    """This run's two login roles and their passwords (the embedded server ignores them)."""

    owner: str
    owner_password: str
    service: str
    service_password: str

    @classmethod
    def for_prefix(cls, prefix: str) -> "RunRoles":
        from helpdesk.database import new_password

        return cls(f"{prefix}_owner", new_password(), f"{prefix}_service", new_password())

    def owner_url(self, libpq_url: str) -> str:
        return _as_role(libpq_url, self.owner, self.owner_password)

    def service_url(self, libpq_url: str) -> str:
        return _as_role(libpq_url, self.service, self.service_password)


def _as_role(libpq_url: str, user: str, password: str) -> str:
    from helpdesk.database import role_url

    return role_url(libpq_url, user, password)


def create_run_roles(admin_url: str, roles: RunRoles) -> None:
    from helpdesk.database import bootstrap_roles

    bootstrap_roles(
        admin_url,
        owner=roles.owner,
        service=roles.service,
        owner_password=roles.owner_password,
        service_password=roles.service_password,
    )


def drop_run_roles(admin_url: str, roles: RunRoles) -> list[str]:
    """Drop every tenant role this run's owner made, then the owner and the service; return
    what could not be dropped (a database of this run's still standing, say), for a warning."""
    from helpdesk.database import TENANT_GROUP

    left: list[str] = []
    with psycopg.connect(admin_url, autocommit=True) as conn:
        tenant_roles = [
            str(row[0])
            for row in conn.execute(
                "SELECT r.rolname FROM pg_roles r"
                " JOIN pg_auth_members m ON m.roleid = r.oid"
                " JOIN pg_roles o ON o.oid = m.member AND o.rolname = %s"
                " WHERE r.rolname <> %s AND pg_has_role(r.oid, %s, 'MEMBER')",
                (roles.owner, TENANT_GROUP, TENANT_GROUP),
            ).fetchall()
        ]
        for role in [*tenant_roles, roles.service, roles.owner]:
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            except psycopg.Error as exc:
                left.append(f"{role}: {exc}".strip())
    return left


def recreate_database(admin_url: str, name: str, owner: str | None = None) -> None:
    drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        conn.execute(statement)


def set_database_owner(admin_url: str, name: str, owner: str) -> None:
    """A clone belongs to whoever cloned it: hand it to the owner role, which creates schemas."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def clone_database(server: Server, name: str, template: str) -> Any:
    """Create ``name`` from ``template`` with pytest-postgresql's janitor; return the janitor."""
    from pytest_postgresql.janitor import DatabaseJanitor

    janitor = DatabaseJanitor(dbname=name, template_dbname=template, **server.janitor_args())
    drop_database(server.admin_url, name)
    for attempt in range(20):
        try:
            janitor.init()
            return janitor
        except psycopg.errors.ObjectInUse:
            # Two workers cloning the same template at once: one waits for the other.
            time.sleep(0.05 * (attempt + 1))
    raise ProviderError(f"could not clone {template} into {name}")
