"""The suite's PostgreSQL, started once per run, and the fixtures every level shares.

The xdist controller (or the lone process without xdist) starts the server, builds a template
database holding the migrated public schema, and hands its address to the workers; each worker
clones its own database from the template.
"""

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from helpdesk.app import create_app
from helpdesk.core.settings import Settings, get_settings
from helpdesk.migrate import upgrade_public
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace
from tests.support.postgres import (
    Server,
    choose_provider,
    clone_database,
    database_prefix,
    docker_available,
    drop_database,
    recreate_database,
    sqlalchemy_url,
    start_server,
    template_name,
    worker_database_name,
)

_INFO_KEY = "helpdesk_pg"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _build_template(server: Server, template: str, token: str) -> None:
    recreate_database(server.admin_url, template)
    engine = create_engine(sqlalchemy_url(server.url_for(template)))
    try:
        upgrade_public(engine)
        with engine.begin() as conn:
            # Lets a test prove its database was cloned from this run's template.
            conn.execute(text("CREATE TABLE public.test_template_origin (token text NOT NULL)"))
            conn.execute(text("INSERT INTO public.test_template_origin VALUES (:t)"), {"t": token})
    finally:
        engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        config.stash_info = json.loads(config.workerinput[_INFO_KEY])  # type: ignore[attr-defined]
        return
    provider = choose_provider(os.environ, docker_available)
    prefix = database_prefix(os.environ)
    template = template_name(prefix)
    server = start_server(provider, os.environ)
    token = uuid.uuid4().hex
    try:
        _build_template(server, template, token)
    except BaseException:
        server.stop()
        raise
    config.helpdesk_server = server  # type: ignore[attr-defined]
    config.stash_info = {  # type: ignore[attr-defined]
        "provider": provider,
        "admin_url": server.admin_url,
        "prefix": prefix,
        "template": template,
        "token": token,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_INFO_KEY] = json.dumps(node.config.stash_info)


def pytest_unconfigure(config: pytest.Config) -> None:
    server: Server | None = getattr(config, "helpdesk_server", None)
    if server is not None:
        try:
            # A server given by TEST_DATABASE_URL outlives the run: leave it as it was found.
            drop_database(server.admin_url, config.stash_info["template"])  # type: ignore[attr-defined]
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
def database_url(pg_info: dict[str, str], database_name: str) -> Iterator[str]:
    server = Server(pg_info["provider"], pg_info["admin_url"], lambda: None)  # type: ignore[arg-type]
    janitor = clone_database(server, database_name, pg_info["template"])
    try:
        yield sqlalchemy_url(server.url_for(database_name))
    finally:
        janitor.drop()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        env="development",
        database_url=database_url,
        password_hash_profile="fast",
        pool_size=4,
        # The tests' webhook receivers listen on loopback; the refusal has tests of its own.
        webhook_allow_private_addresses=True,
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.connect(settings, database_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture(scope="session")
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def factory(runtime: Runtime) -> Factory:
    return Factory(runtime)


@pytest.fixture
def ws(factory: Factory) -> Workspace:
    """A fresh workspace of the test's own: tests isolate themselves by provisioning."""
    return factory.workspace()


@pytest.fixture
def admin(factory: Factory, ws: Workspace) -> dict[str, str]:
    """Authorization headers for ``ws``'s first admin."""
    return factory.headers(ws.admin, ws)


@pytest.fixture
def cli(database_url: str, runtime: Runtime) -> Iterator[CliRunner]:
    """Runs ``helpdesk`` commands in-process against this worker's database; the settings
    cache is cleared around it so the command reads this environment, not a cached one."""
    get_settings.cache_clear()
    yield CliRunner(
        env={
            "DATABASE_URL": database_url,
            "HELPDESK_PASSWORD_HASH_PROFILE": "fast",
            "HELPDESK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "COLUMNS": "200",
        }
    )
    get_settings.cache_clear()
