"""The `helpdesk` command line against the worker's database."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.runtime.environment import EnvironmentContext
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import select, text
from typer.testing import CliRunner

from auth.models import User
from auth.passwords import verify_password
from auth.permissions import BUILTIN_ROLES
from helpdesk.cli import app
from helpdesk.core.db import transaction
from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.core.settings import get_settings
from helpdesk.demo import DEMO_OPERATOR, DEMO_TICKETS
from helpdesk.runtime import Runtime
from tenants.locks import LockKey
from tenants.migrations import BUSY
from tenants.models import Tenant
from tenants.schema import tenant_config, tenant_head, tenant_script
from tests.support.factories import Factory, unique_slug

pytestmark = pytest.mark.e2e


def _status(runtime: Runtime, slug: str) -> str | None:
    with transaction(runtime.sessions) as session:
        return session.scalar(select(Tenant.status).where(Tenant.slug == slug))


def test_tenant_lifecycle_from_the_command_line(cli: CliRunner, runtime: Runtime) -> None:
    slug = unique_slug("cli")
    created = cli.invoke(
        app,
        [
            "tenants",
            "create",
            slug,
            "--name",
            "CLI Co",
            "--admin-email",
            f"a.{slug}@example.com",
            "--admin-password-stdin",
        ],
        input="a-long-password\n",
    )
    assert created.exit_code == 0, created.output
    assert _status(runtime, slug) == "active"
    listed = cli.invoke(app, ["tenants", "list"])
    assert slug in listed.output
    for command, expected in (
        ("suspend", "suspended"),
        ("resume", "active"),
        ("delete", "deleting"),
    ):
        result = cli.invoke(app, ["tenants", command, slug])
        assert result.exit_code == 0, result.output
        assert _status(runtime, slug) == expected
    purged = cli.invoke(app, ["tenants", "purge", slug, "--yes"])
    assert purged.exit_code == 0, purged.output
    assert _status(runtime, slug) is None


def test_creating_a_workspace_with_a_bad_slug_fails_with_the_rule(cli: CliRunner) -> None:
    result = cli.invoke(
        app,
        [
            "tenants",
            "create",
            "Bad-Slug",
            "--name",
            "x",
            "--admin-email",
            "a@example.com",
            "--admin-password-stdin",
        ],
        input="a-long-password\n",
    )
    assert result.exit_code == 1
    assert "3 to 40" in result.output


def test_operators_create_reads_the_password_from_stdin(cli: CliRunner, runtime: Runtime) -> None:
    email = f"{unique_slug('op')}@example.com"
    result = cli.invoke(
        app, ["operators", "create", email, "--password-stdin"], input="op-password-1\n"
    )
    assert result.exit_code == 0, result.output
    with transaction(runtime.sessions) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        assert user.is_operator
        assert user.password_hash is not None
        assert "op-password-1" not in user.password_hash
    again = cli.invoke(
        app, ["operators", "create", email, "--password-stdin"], input="op-password-1\n"
    )
    assert again.exit_code == 1


def test_a_short_operator_password_is_refused(cli: CliRunner) -> None:
    result = cli.invoke(
        app, ["operators", "create", "short@example.com", "--password-stdin"], input="short\n"
    )
    assert result.exit_code == 2
    assert "8 characters" in result.output


def test_migrate_is_idempotent_and_db_url_hides_the_password(cli: CliRunner) -> None:
    first = cli.invoke(app, ["migrate"])
    assert first.exit_code == 0, first.output
    second = cli.invoke(app, ["migrate"])
    assert second.exit_code == 0
    assert "0 failed" in second.output
    url = cli.invoke(app, ["db", "url"])
    assert url.exit_code == 0
    assert "postgresql+psycopg://" in url.output


def test_production_refuses_to_start_without_a_database_url() -> None:
    get_settings.cache_clear()
    try:
        result = CliRunner(env={"HELPDESK_ENV": "production", "DATABASE_URL": None}).invoke(
            app, ["migrate"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.output


def test_operators_create_prompts_for_the_password_twice(cli: CliRunner, runtime: Runtime) -> None:
    email = f"{unique_slug('op')}@example.com"
    mismatch = cli.invoke(
        app, ["operators", "create", email], input="op-password-1\nop-password-2\n"
    )
    assert mismatch.exit_code != 0
    result = cli.invoke(
        app,
        ["operators", "create", email],
        input="op-password-1\nop-password-1\n",
    )
    assert result.exit_code == 0, result.output
    assert "op-password-1" not in result.output
    with transaction(runtime.sessions) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        assert user.is_operator
        assert user.password_hash is not None
        assert verify_password("op-password-1", user.password_hash)[0]


# --- migrate: one workspace's failure is reported, and a rerun resumes -------------------------


def _step_back_one_revision(runtime: Runtime, schema: str) -> str:
    """Downgrade one workspace from the tenant head to the revision before it."""
    script = tenant_script()
    head = script.get_revision(tenant_head())
    assert head is not None
    previous = head.down_revision
    assert isinstance(previous, str), "the tenant track needs two revisions for this test"
    with runtime.engine.begin() as conn:
        conn.execute(
            text("SELECT set_config('search_path', quote_ident(:schema), true)"),
            {"schema": schema},
        )
        with EnvironmentContext(
            tenant_config(),
            script,
            fn=lambda rev, _ctx: script._downgrade_revs(previous, rev),
            destination_rev=previous,
        ) as env:
            env.configure(connection=conn, version_table_schema=schema)
            with env.begin_transaction():
                env.run_migrations()
    return previous


def _stamp(runtime: Runtime, schema: str) -> list[str]:
    with runtime.engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        table = sql.Identifier(schema, "alembic_version")
        return [row[0] for row in raw.execute(sql.SQL("SELECT version_num FROM {}").format(table))]


def _run_sql(runtime: Runtime, statement: sql.Composable) -> None:
    with runtime.engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute(statement)


def test_migrate_reports_a_failed_workspace_and_a_rerun_resumes(
    cli: CliRunner, runtime: Runtime, factory: Factory, client: TestClient
) -> None:
    broken, healthy = factory.workspace(), factory.workspace()
    head = tenant_head()
    for ws in (broken, healthy):
        previous = _step_back_one_revision(runtime, ws.schema_name)
        assert _stamp(runtime, ws.schema_name) == [previous]
    # Any head revision ends by stamping it; this workspace refuses that stamp, so its upgrade
    # fails after the revision's own DDL ran, which must roll back with it.
    version_table = sql.Identifier(broken.schema_name, "alembic_version")
    _run_sql(
        runtime,
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT sabotage CHECK (version_num <> {})").format(
            version_table, sql.Literal(head)
        ),
    )
    only_ours = ["--tenant", broken.slug, "--tenant", healthy.slug]

    failed = cli.invoke(app, ["migrate", "--concurrency", "2", *only_ours])

    assert failed.exit_code == 1, failed.output
    output = " ".join(failed.output.split())
    assert f"failed {broken.slug}: revision {head}:" in output
    assert 'violates check constraint "sabotage"' in output
    assert "1 tenant schema(s) upgraded, 1 failed" in output
    assert "tenant schemas" in output  # the progress bar
    assert healthy.slug not in output.replace(f"failed {broken.slug}", "")
    assert _stamp(runtime, broken.schema_name) == [previous]
    assert _stamp(runtime, healthy.schema_name) == [head]

    _run_sql(runtime, sql.SQL("ALTER TABLE {} DROP CONSTRAINT sabotage").format(version_table))
    rerun = cli.invoke(app, ["migrate", *only_ours])

    assert rerun.exit_code == 0, rerun.output
    assert "1 tenant schema(s) upgraded, 0 failed" in " ".join(rerun.output.split())
    assert _stamp(runtime, broken.schema_name) == [head]
    for ws in (broken, healthy):
        assert (
            client.get("/api/v1/tickets", headers=factory.headers(ws.admin, ws)).status_code == 200
        )


def test_migrate_leaves_a_workspace_another_run_holds_and_says_so(
    cli: CliRunner, runtime: Runtime, factory: Factory
) -> None:
    held, free = factory.workspace(), factory.workspace()
    for ws in (held, free):
        _step_back_one_revision(runtime, ws.schema_name)
    with runtime.engine.connect() as other_run, other_run.begin():
        other_run.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:schema), :key)"),
            {"schema": held.schema_name, "key": int(LockKey.TENANT_MIGRATION)},
        )
        result = cli.invoke(app, ["migrate", "--tenant", held.slug, "--tenant", free.slug])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "1 tenant schema(s) upgraded, 0 failed, 1 left to another run" in output
    assert f"({held.slug}: {BUSY})" in output
    assert _stamp(runtime, free.schema_name) == [tenant_head()]
    assert _stamp(runtime, held.schema_name) != [tenant_head()]

    rerun = cli.invoke(app, ["migrate", "--tenant", held.slug])
    assert rerun.exit_code == 0, rerun.output
    assert _stamp(runtime, held.schema_name) == [tenant_head()]


# --- serve: embedded PostgreSQL, --demo, readiness, signals, and the data directory's reuse --


SERVE_START_TIMEOUT_SECONDS = 120.0  # guards against a hang only
SERVE_STOP_TIMEOUT_SECONDS = 60.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    stdout: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _serve_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_CORE_", "COVERAGE_"))
        and key not in ("DATABASE_URL", "HELPDESK_DATABASE_URL")
    }
    env.update(
        HELPDESK_DATA_DIR=str(data_dir),
        HELPDESK_PASSWORD_HASH_PROFILE="fast",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    return env


@contextmanager
def _serving(data_dir: Path, *args: str) -> Iterator[Served]:
    """``helpdesk serve`` in a process of its own, ready; killed if the test did not stop it."""
    port = _free_port()
    stdout = data_dir.parent / f"serve-{port}.out"
    command = [str(Path(sys.executable).with_name("helpdesk")), "serve", "--port", str(port), *args]
    with stdout.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            command, env=_serve_env(data_dir), stdout=sink, stderr=subprocess.STDOUT
        )
    served = Served(process, f"http://127.0.0.1:{port}", stdout)
    try:
        _wait_ready(served)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"serve exited early:\n{served.stdout.read_text()}")
        try:
            if httpx.get(f"{served.base_url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"serve never became ready:\n{served.stdout.read_text()}")


def _stop(served: Served, signum: int) -> None:
    served.process.send_signal(signum)
    served.process.wait(timeout=SERVE_STOP_TIMEOUT_SECONDS)


def _printed_logins(text_out: str) -> dict[str, tuple[str, str, str]]:
    """The demo table's rows, by email: (password, role, workspace)."""
    rows = {}
    for line in text_out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 4 and "@" in cells[0]:
            rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: run as root, the embedded server opens up the parents of its
    # data directory to its own OS user.
    home = Path(tempfile.mkdtemp(prefix="helpdesk-serve-test-"))
    try:
        yield home / "data"
    finally:
        if (home / "data" / "pgdata" / "postmaster.pid").exists():
            EmbeddedPostgres(home / "data" / "pgdata").stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_serve_demo_on_embedded_postgres_then_again_on_the_same_data(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with _serving(data_dir, "--demo") as first:
        logins = _printed_logins(first.stdout.read_text())
        assert {role for _, role, _ in logins.values()} == {*BUILTIN_ROLES, "operator"}
        for email, (password, role, workspace) in logins.items():
            body = {"email": email, "password": password}
            if role != "operator":
                body["tenant"] = workspace
            signed_in = httpx.post(f"{first.base_url}/api/v1/auth/login", json=body, timeout=30)
            assert signed_in.status_code == 200, (email, signed_in.text)
            if role == "admin":
                token = signed_in.json()["access_token"]
                tickets = httpx.get(
                    f"{first.base_url}/api/v1/tickets",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                assert len(tickets.json()["items"]) == len(DEMO_TICKETS)
        assert (pgdata / "postmaster.pid").exists()
        _stop(first, signal.SIGTERM)
    assert not (pgdata / "postmaster.pid").exists(), "SIGTERM left the embedded server running"

    operator_password = logins[DEMO_OPERATOR][0]
    with _serving(data_dir) as second:
        assert "Demo logins" not in second.stdout.read_text()
        # The first run's operator signs in: the second run found the same database.
        signed_in = httpx.post(
            f"{second.base_url}/api/v1/auth/login",
            json={"email": DEMO_OPERATOR, "password": operator_password},
            timeout=30,
        )
        assert signed_in.status_code == 200, signed_in.text
        _stop(second, signal.SIGINT)
    assert not (pgdata / "postmaster.pid").exists(), "Ctrl-C left the embedded server running"
