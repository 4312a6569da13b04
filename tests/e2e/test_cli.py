"""The `helpdesk` command line against the worker's database."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from auth.models import User
from helpdesk.cli import app
from helpdesk.core.db import transaction
from helpdesk.core.settings import get_settings
from helpdesk.runtime import Runtime
from tenants.models import Tenant
from tests.support.factories import unique_slug

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(database_url: str, runtime: Runtime) -> Iterator[CliRunner]:
    get_settings.cache_clear()
    yield CliRunner(
        env={
            "DATABASE_URL": database_url,
            "HELPDESK_PASSWORD_HASH_PROFILE": "fast",
            "COLUMNS": "200",
        }
    )
    get_settings.cache_clear()


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
