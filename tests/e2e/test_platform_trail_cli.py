"""The platform trail records a workspace's whole life when an operator runs it from the command
line too, down to the purge that drops its schema (the HTTP path is in test_platform)."""

import uuid

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from audit.models import PlatformAuditEvent
from helpdesk.cli import app
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tenants.models import Tenant
from tests.support.factories import unique_slug

pytestmark = pytest.mark.e2e


def _trail(runtime: Runtime, tenant_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    with transaction(runtime.sessions) as session:
        events = session.scalars(
            select(PlatformAuditEvent)
            .where(PlatformAuditEvent.tenant_id == tenant_id)
            .order_by(PlatformAuditEvent.id)
        ).all()
        return [(e.action, e.outcome, e.target_id) for e in events]


def test_each_lifecycle_command_lands_on_the_platform_trail(
    cli: CliRunner, runtime: Runtime
) -> None:
    slug = unique_slug("trail")
    create = ["tenants", "create", slug, "--name", "Trail Co"]
    create += ["--admin-email", f"a.{slug}@example.com", "--admin-password-stdin"]
    created = cli.invoke(app, create, input="a-long-password\n")
    assert created.exit_code == 0, created.output
    with transaction(runtime.sessions) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    assert tenant_id is not None
    for command in (["suspend"], ["resume"], ["delete"], ["purge", "--yes"]):
        result = cli.invoke(app, ["tenants", command[0], slug, *command[1:]])
        assert result.exit_code == 0, result.output

    # The trail outlives the workspace: the purge is its last entry.
    target = str(tenant_id)
    assert _trail(runtime, tenant_id) == [
        ("tenant.create", "success", target),
        ("tenant.suspend", "success", target),
        ("tenant.resume", "success", target),
        ("tenant.delete", "success", target),
        ("tenant.purge", "success", target),
    ]
