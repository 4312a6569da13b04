"""``helpdesk jobs escalate|auto-close`` from the command line: what each changes, that a rerun
changes nothing more, and that a workspace the job cannot run in makes the exit code say so."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from helpdesk.cli import app
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from helpdesk.tickets.models import Ticket
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e


def _insert(runtime: Runtime, ws: Workspace, **fields: Any) -> int:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        ticket = Ticket(title="Cannot log in", **fields)
        session.add(ticket)
        session.flush()
        return ticket.id


def _state(runtime: Runtime, ws: Workspace, ticket_id: int) -> tuple[str, str]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.id == ticket_id)).one()
        return ticket.status, ticket.priority


# Each job, a ticket it must act on (relative to the real present), and that ticket after.
JOBS = [
    (
        "escalate",
        {"status": "open", "priority": "low", "sla_due_at": timedelta(minutes=-5)},
        ("open", "medium"),
    ),
    (
        "auto-close",
        {"status": "pending", "priority": "low", "status_changed_at": timedelta(days=-8)},
        ("closed", "low"),
    ),
]


@pytest.mark.parametrize(("job", "ticket", "after"), JOBS, ids=[j[0] for j in JOBS])
def test_a_job_changes_its_tickets_once(
    cli: CliRunner,
    runtime: Runtime,
    factory: Factory,
    job: str,
    ticket: dict[str, Any],
    after: tuple[str, str],
) -> None:
    ws = factory.workspace()
    now = datetime.now(UTC)
    fields = {k: now + v if isinstance(v, timedelta) else v for k, v in ticket.items()}
    ticket_id = _insert(runtime, ws, **fields)
    first = cli.invoke(app, ["jobs", job, "--tenant", ws.slug])
    assert first.exit_code == 0, first.output
    assert f"{job}: 1 ticket(s) changed in 1 workspace(s)" in first.output
    assert _state(runtime, ws, ticket_id) == after
    again = cli.invoke(app, ["jobs", job, "--tenant", ws.slug])
    assert again.exit_code == 0, again.output
    assert f"{job}: 0 ticket(s) changed" in again.output


@pytest.mark.parametrize("job", ["escalate", "auto-close", "retention", "deliver-webhooks"])
def test_an_unknown_workspace_fails_the_run_and_says_which(cli: CliRunner, job: str) -> None:
    result = cli.invoke(app, ["jobs", job, "--tenant", "no_such_workspace"])
    assert result.exit_code == 1, result.output
    assert "no_such_workspace" in result.output
