"""The suite's PostgreSQL, started once per run, and the fixtures every level shares.

The xdist controller (or the lone process without xdist) starts the server, builds a template
database holding the migrated public schema, and hands its address to the workers; each worker
clones its own database from the template.

The app and the runtime under test log in as the run's service role, as production does: no
superuser, owning nothing, reaching a workspace's tables only through ``SET LOCAL ROLE``. The
owner role migrates and owns the databases; ``owner_engine`` lets a test look behind the app.
"""

import json
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from helpdesk.app import create_app
from helpdesk.core.settings import Settings, get_settings
from helpdesk.migrate import upgrade_public
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace
from tests.support.postgres import (
    RunRoles,
    Server,
    choose_provider,
    clone_database,
    create_run_roles,
    database_prefix,
    docker_available,
    drop_database,
    drop_run_roles,
    recreate_database,
    set_database_owner,
    sqlalchemy_url,
    start_server,
    template_name,
    worker_database_name,
)

_INFO_KEY = "helpdesk_pg"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _build_template(server: Server, roles: RunRoles, template: str, token: str) -> None:
    recreate_database(server.admin_url, template, owner=roles.owner)
    engine = create_engine(sqlalchemy_url(roles.owner_url(server.url_for(template))))
    try:
        with engine.begin() as conn:
            # Lets a test prove its database was cloned from this run's template.
            conn.execute(text("CREATE TABLE public.test_template_origin (token text NOT NULL)"))
            conn.execute(text("INSERT INTO public.test_template_origin VALUES (:t)"), {"t": token})
        upgrade_public(engine)
    finally:
        engine.dispose()


def _roles(info: dict[str, str]) -> RunRoles:
    return RunRoles(
        info["owner"], info["owner_password"], info["service"], info["service_password"]
    )


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        config.stash_info = json.loads(config.workerinput[_INFO_KEY])  # type: ignore[attr-defined]
        return
    provider = choose_provider(os.environ, docker_available)
    prefix = database_prefix(os.environ)
    template = template_name(prefix)
    server = start_server(provider, os.environ)
    token = uuid.uuid4().hex
    roles = RunRoles.for_prefix(prefix)
    try:
        create_run_roles(server.admin_url, roles)
        _build_template(server, roles, template, token)
    except BaseException:
        try:
            drop_database(server.admin_url, template)
            drop_run_roles(server.admin_url, roles)
        finally:
            server.stop()
        raise
    config.helpdesk_server = server  # type: ignore[attr-defined]
    config.stash_info = {  # type: ignore[attr-defined]
        "provider": provider,
        "admin_url": server.admin_url,
        "prefix": prefix,
        "template": template,
        "token": token,
        "owner": roles.owner,
        "owner_password": roles.owner_password,
        "service": roles.service,
        "service_password": roles.service_password,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_INFO_KEY] = json.dumps(node.config.stash_info)


def pytest_unconfigure(config: pytest.Config) -> None:
    server: Server | None = getattr(config, "helpdesk_server", None)
    if server is not None:
        info: dict[str, str] = config.stash_info  # type: ignore[attr-defined]
        try:
            # A server given by TEST_DATABASE_URL outlives the run: leave it as it was found,
            # cluster-wide roles included (the workers have dropped their databases by now).
            drop_database(server.admin_url, info["template"])
            left = drop_run_roles(server.admin_url, _roles(info))
            if left:
                print(f"roles left on the server: {'; '.join(left)}", file=sys.stderr)
        finally:
            server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL provider: {config.stash_info['provider']}"  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    terminalreporter.write_line(f"PostgreSQL provider: {config.stash_info['provider']}")  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_info(pytestconfig: pytest.Config) -> dict[str, str]:
    info: dict[str, str] = pytestconfig.stash_info  # type: ignore[attr-defined]
    return info


@pytest.fixture(scope="session")
def worker_id_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_name(pg_info: dict[str, str], worker_id_name: str) -> str:
    return worker_database_name(pg_info["prefix"], worker_id_name)


@pytest.fixture(scope="session")
def run_roles(pg_info: dict[str, str]) -> RunRoles:
    return _roles(pg_info)


@pytest.fixture(scope="session")
def worker_database(
    pg_info: dict[str, str], database_name: str, run_roles: RunRoles
) -> Iterator[str]:
    """This worker's database, cloned from the template and owned by the owner role; yields
    its libpq URL as the admin (superuser) sees it."""
    server = Server(pg_info["provider"], pg_info["admin_url"], lambda: None)  # type: ignore[arg-type]
    janitor = clone_database(server, database_name, pg_info["template"])
    try:
        set_database_owner(server.admin_url, database_name, run_roles.owner)
        yield server.url_for(database_name)
    finally:
        janitor.drop()


@pytest.fixture(scope="session")
def database_url(worker_database: str, run_roles: RunRoles) -> str:
    """What the app connects with: the service role's URL."""
    return sqlalchemy_url(run_roles.service_url(worker_database))


@pytest.fixture(scope="session")
def owner_database_url(worker_database: str, run_roles: RunRoles) -> str:
    return sqlalchemy_url(run_roles.owner_url(worker_database))


@pytest.fixture(scope="session")
def owner_engine(owner_database_url: str) -> Iterator[Engine]:
    """The owner's view of this worker's database, for a test that looks behind the app."""
    engine = create_engine(owner_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        env="development",
        database_url=database_url,
        password_hash_profile="fast",
        pool_size=4,
        # No schema pool unless a test fills one (tests/support/pool.py): a worker started by a
        # test would otherwise leave ready schemas in the database for every later test.
        schema_pool_size=0,
        # The tests' webhook receivers listen on loopback; the refusal has tests of its own.
        webhook_allow_private_addresses=True,
    )


@pytest.fixture(scope="session")
def service_runtime(
    settings: Settings, database_url: str, owner_database_url: str
) -> Iterator[Runtime]:
    """The runtime under test, as production runs it: logged in as the service role."""
    runtime = Runtime.connect(settings, database_url, owner_database_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture(scope="session")
def runtime(settings: Settings, owner_database_url: str) -> Iterator[Runtime]:
    """The tests' own hands on the database: the owner's, which reads any workspace's tables
    without ``SET ROLE`` and builds schemas at old revisions. The app, served processes and
    ``helpdesk`` commands under test log in as the service role (``service_runtime``)."""
    runtime = Runtime.connect(settings, owner_database_url, owner_database_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture(scope="session")
def app(service_runtime: Runtime) -> FastAPI:
    return create_app(service_runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def factory(service_runtime: Runtime) -> Factory:
    """Builds data as the app would, as the service role (provisioning included)."""
    return Factory(service_runtime)


@pytest.fixture
def ws(factory: Factory) -> Workspace:
    """A fresh workspace of the test's own: tests isolate themselves by provisioning."""
    return factory.workspace()


@pytest.fixture
def admin(factory: Factory, ws: Workspace) -> dict[str, str]:
    """Authorization headers for ``ws``'s first admin."""
    return factory.headers(ws.admin, ws)


@pytest.fixture
def cli(database_url: str, owner_database_url: str, runtime: Runtime) -> Iterator[CliRunner]:
    """Runs ``helpdesk`` commands in-process against this worker's database; the settings
    cache is cleared around it so the command reads this environment, not a cached one."""
    get_settings.cache_clear()
    yield CliRunner(
        env={
            "DATABASE_URL": database_url,
            "HELPDESK_OWNER_DATABASE_URL": owner_database_url,
            "HELPDESK_PASSWORD_HASH_PROFILE": "fast",
            "HELPDESK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "COLUMNS": "200",
        }
    )
    get_settings.cache_clear()


@pytest.fixture
def httpserver() -> Iterator[HTTPServer]:
    """A webhook receiver of the test's own, on a fresh port, replacing pytest-httpserver's
    one-per-process server: workspaces outlive their tests in this worker's database, and a
    webhook an earlier test left subscribed to a shared port could be delivered to it by any
    whole-database delivery run (a served app's worker) while a later test counts requests."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()
