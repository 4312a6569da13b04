"""Retention with time travel: what a policy purges and what it keeps, legal hold, dry runs,
repeat runs, the audit chain across a purge, one run at a time, the job command, and who may
read, change and run the policy."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from audit.models import AuditCheckpoint, AuditEvent
from audit.queries import verify_workspace
from audit.retention import RetentionReport
from helpdesk.app import API_PREFIX
from helpdesk.cli import app as cli_app
from helpdesk.compliance.service import run_retention, run_retention_job
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tenants.context import TenantRef
from tenants.registry import get_by_slug, schedule_deletion
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.integration

API = API_PREFIX
COUNTS = ("tickets", "comments", "audit_events")


@pytest.fixture
def start() -> datetime:
    """The real present; the tests travel back from it to make old data."""
    return datetime.now(UTC)


@contextmanager
def days_before(start: datetime, days: float) -> Iterator[None]:
    with time_machine.travel(start - timedelta(days=days), tick=True):
        yield


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


class Desk:
    """One workspace seen through its admin (for tickets) and a compliance officer (for policy
    and runs); tokens are issued at the moment of each call, time travel included."""

    def __init__(self, client: TestClient, factory: Factory, ws: Workspace) -> None:
        self.client, self.factory, self.ws = client, factory, ws
        self.officer = factory.member(ws, "compliance")

    def admin(self) -> dict[str, str]:
        return self.factory.headers(self.ws.admin, self.ws)

    def compliance(self) -> dict[str, str]:
        return self.factory.headers(self.officer, self.ws)

    def ticket(self, *, closed: bool = False, comments: int = 0) -> int:
        body = {"title": "Old problem", "customer_email": "old@example.com", "tags": ["x"]}
        ticket_id: int = _ok(
            self.client.post(f"{API}/tickets", json=body, headers=self.admin()), 201
        )["id"]
        for n in range(comments):
            _ok(
                self.client.post(
                    f"{API}/tickets/{ticket_id}/comments",
                    json={"body": f"note {n}"},
                    headers=self.admin(),
                ),
                201,
            )
        if closed:
            self.status(ticket_id, "closed")
        return ticket_id

    def status(self, ticket_id: int, status: str) -> None:
        _ok(
            self.client.patch(
                f"{API}/tickets/{ticket_id}", json={"status": status}, headers=self.admin()
            )
        )

    def policy(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = _ok(
            self.client.put(f"{API}/retention/policy", json=fields, headers=self.compliance())
        )
        return result

    def run(self, *, dry_run: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = _ok(
            self.client.post(
                f"{API}/retention/run",
                params={"dry_run": str(dry_run).lower()},
                headers=self.compliance(),
            )
        )
        return result


@pytest.fixture
def desk(client: TestClient, factory: Factory, start: datetime) -> Desk:
    with days_before(start, 40):  # the workspace exists before everything it holds
        return Desk(client, factory, factory.workspace())


def _ticket_ids(runtime: Runtime, ws: Workspace) -> list[int]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return list(session.scalars(text("SELECT id FROM tickets ORDER BY id")))


def _table_counts(runtime: Runtime, ws: Workspace) -> dict[str, int]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return {
            table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("tickets", "comments", "ticket_tags", "audit_events", "audit_checkpoints")
        }


def _snapshot(runtime: Runtime, ws: Workspace) -> dict[str, list[Any]]:
    """Every row retention may touch, as it stands: tickets, comments and tags whole, the audit
    trail by id and hash, the checkpoints."""
    queries = {
        "tickets": "SELECT t::text FROM tickets t ORDER BY id",
        "comments": "SELECT c::text FROM comments c ORDER BY id",
        "ticket_tags": "SELECT g::text FROM ticket_tags g ORDER BY 1",
        "audit_events": "SELECT id, hash FROM audit_events ORDER BY id",
        "audit_checkpoints": "SELECT k::text FROM audit_checkpoints k ORDER BY id",
    }
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        return {name: list(session.execute(text(sql)).all()) for name, sql in queries.items()}


def _unchanged_but_the_run_event(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> None:
    """A run that may remove nothing (a dry run, or any run under a legal hold) leaves every row
    as it was; the one thing it adds is its own audit event."""
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    assert after["audit_events"][:-1] == before["audit_events"]
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {key: report[key] for key in COUNTS}


def _tenant(ws: Workspace) -> TenantRef:
    return TenantRef(ws.id, ws.slug, ws.slug, ws.schema_name, ws.role_name, "active")


def test_closed_tickets_older_than_the_policy_go_and_younger_ones_stay(
    desk: Desk, runtime: Runtime, start: datetime
) -> None:
    with days_before(start, 35):
        still_open = desk.ticket()
        reopened = desk.ticket(closed=True)
    with days_before(start, 31):
        expired = desk.ticket(closed=True, comments=2)
        desk.status(reopened, "open")
    with days_before(start, 29):
        young = desk.ticket(closed=True, comments=1)
    desk.policy(closed_ticket_days=30)
    before = _table_counts(runtime, desk.ws)
    unchanged = _snapshot(runtime, desk.ws)

    preview = desk.run(dry_run=True)
    _unchanged_but_the_run_event(unchanged, _snapshot(runtime, desk.ws))
    report = desk.run()

    assert _counts(preview) == _counts(report) == {"tickets": 1, "comments": 2, "audit_events": 0}
    assert (preview["dry_run"], report["dry_run"]) == (True, False)
    assert report["closed_ticket_days"] == 30
    assert _ticket_ids(runtime, desk.ws) == [still_open, reopened, young]
    gone = desk.client.get(f"{API}/tickets/{expired}", headers=desk.admin())
    assert gone.status_code == 404
    after = _table_counts(runtime, desk.ws)
    assert (after["comments"], after["ticket_tags"]) == (before["comments"] - 2, 3)

    again = desk.run()
    assert _counts(again) == dict.fromkeys(COUNTS, 0)
    assert _ticket_ids(runtime, desk.ws) == [still_open, reopened, young]


def test_each_run_is_audited_with_its_report(desk: Desk, runtime: Runtime, start: datetime) -> None:
    with days_before(start, 31):
        desk.ticket(closed=True)
    desk.policy(closed_ticket_days=30)
    desk.run(dry_run=True)
    desk.run()
    with tenant_transaction(runtime.sessions, desk.ws.schema_name, desk.ws.role_name) as session:
        runs = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "retention.run").order_by(AuditEvent.id)
        ).all()
        update = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "retention.policy_update")
        ).one()
    assert [(e.changes["dry_run"], e.changes["tickets"]) for e in runs] == [(True, 1), (False, 1)]
    assert {e.actor_id for e in runs} == {desk.officer.user_id}
    assert update.changes == {"closed_ticket_days": {"before": None, "after": 30}}


def test_a_legal_hold_keeps_everything(desk: Desk, runtime: Runtime, start: datetime) -> None:
    with days_before(start, 60):
        desk.ticket(closed=True, comments=1)
    desk.policy(closed_ticket_days=1, audit_event_days=1, legal_hold=True)
    tickets = _ticket_ids(runtime, desk.ws)

    for dry_run in (True, False):
        before = _snapshot(runtime, desk.ws)
        report = desk.run(dry_run=dry_run)
        assert report["legal_hold"] is True
        assert _counts(report) == dict.fromkeys(COUNTS, 0)
        _unchanged_but_the_run_event(before, _snapshot(runtime, desk.ws))
    assert _ticket_ids(runtime, desk.ws) == tickets
    assert _table_counts(runtime, desk.ws)["audit_checkpoints"] == 0

    desk.policy(legal_hold=False)
    assert desk.run()["tickets"] == 1


def test_an_audit_purge_leaves_a_chain_that_verifies(
    desk: Desk, runtime: Runtime, service_runtime: Runtime, start: datetime
) -> None:
    with days_before(start, 31):
        for _ in range(7):
            desk.ticket()
    with days_before(start, 29):
        desk.ticket()
    desk.policy(audit_event_days=30)
    ws = desk.ws
    unchanged = _snapshot(runtime, ws)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        old = [e for e in events if e.occurred_at < start - timedelta(days=30)]
        session.expunge_all()
    assert len(old) == 7

    preview = desk.run(dry_run=True)
    _unchanged_but_the_run_event(unchanged, _snapshot(runtime, ws))
    with tenant_transaction(service_runtime.sessions, ws.schema_name, ws.role_name) as session:
        report = run_retention(session, service_runtime.sessions, _tenant(ws), batch_size=3)
    assert preview["audit_events"] == report.audit_events == 7
    assert report.checkpoints == report.batches == 3

    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        remaining = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        checkpoint = session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        ).one()
        verdict = verify_workspace(session)
    assert remaining[0].id == events[len(old)].id
    assert (checkpoint.last_purged_id, checkpoint.last_hash) == (old[-1].id, old[-1].hash)
    assert remaining[0].prev_hash == checkpoint.last_hash
    assert (verdict.valid, verdict.events_checked) == (True, len(remaining))

    assert desk.run()["audit_events"] == 0
    desk.ticket()  # new events still link to the head
    verify = _ok(desk.client.get(f"{API}/audit/verify", headers=desk.compliance()))
    assert verify["valid"] is True


def test_purging_the_whole_trail_still_links_new_events(
    desk: Desk, runtime: Runtime, service_runtime: Runtime, start: datetime
) -> None:
    with days_before(start, 35):
        desk.ticket()
    ws = desk.ws
    with days_before(start, 34):
        desk.policy(audit_event_days=30)
    with tenant_transaction(service_runtime.sessions, ws.schema_name, ws.role_name) as session:
        report = run_retention(session, service_runtime.sessions, _tenant(ws))
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    assert report.audit_events >= 2
    desk.ticket()  # the first event after the purge links to the checkpoint
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        assert verify_workspace(session).valid


def test_batches_are_bounded_and_a_run_resumes_where_it_stopped(
    desk: Desk, runtime: Runtime, service_runtime: Runtime, start: datetime
) -> None:
    with days_before(start, 31):
        for _ in range(5):
            desk.ticket(closed=True)
    with days_before(start, 29):
        desk.ticket(closed=True)
    desk.policy(closed_ticket_days=30)
    ws = desk.ws
    with tenant_transaction(service_runtime.sessions, ws.schema_name, ws.role_name) as session:
        report = run_retention(session, service_runtime.sessions, _tenant(ws), batch_size=2)
    assert (report.tickets, report.batches) == (5, 3)
    assert len(_ticket_ids(runtime, ws)) == 1


def test_one_run_at_a_time_per_workspace(desk: Desk, runtime: Runtime) -> None:
    ws = desk.ws
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as holder:
        holder.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 5)"))
        busy = desk.client.post(f"{API}/retention/run", headers=desk.compliance())
    assert (busy.status_code, busy.json()["code"]) == (409, "retention_running")
    assert desk.run()["dry_run"] is False


def test_a_dry_run_reports_what_a_real_run_then_removes(
    desk: Desk, runtime: Runtime, service_runtime: Runtime, start: datetime
) -> None:
    with days_before(start, 50):
        for n in range(4):
            desk.ticket(closed=n % 2 == 0, comments=n)
    with days_before(start, 3):
        desk.ticket(closed=True, comments=1)
    desk.policy(closed_ticket_days=10, audit_event_days=45)
    preview: RetentionReport
    with tenant_transaction(
        service_runtime.sessions, desk.ws.schema_name, desk.ws.role_name
    ) as session:
        preview = run_retention(session, service_runtime.sessions, _tenant(desk.ws), dry_run=True)
    before = _table_counts(runtime, desk.ws)
    report = desk.run()
    after = _table_counts(runtime, desk.ws)
    assert _counts(report) == {
        "tickets": preview.tickets,
        "comments": preview.comments,
        "audit_events": preview.audit_events,
    }
    assert (preview.tickets, preview.comments) == (2, 2)
    assert before["tickets"] - after["tickets"] == report["tickets"]
    assert before["comments"] - after["comments"] == report["comments"]
    assert before["audit_events"] + 1 - after["audit_events"] == report["audit_events"]


def test_the_policy_defaults_to_keeping_everything_and_validates(desk: Desk) -> None:
    url = f"{API}/retention/policy"
    policy = _ok(desk.client.get(url, headers=desk.compliance()))
    assert policy == {
        "closed_ticket_days": None,
        "audit_event_days": None,
        "legal_hold": False,
        "updated_at": None,
    }
    assert _counts(desk.run()) == dict.fromkeys(COUNTS, 0)
    for bad in (
        {"closed_ticket_days": 0},
        {"audit_event_days": -1},
        {"closed_ticket_days": 36_501},
        {"legal_hold": None},
        {"keep_forever": True},
    ):
        response = desk.client.put(url, json=bad, headers=desk.compliance())
        assert response.status_code == 422, bad
    saved = desk.policy(closed_ticket_days=90, audit_event_days=365)
    assert (saved["closed_ticket_days"], saved["audit_event_days"]) == (90, 365)
    # A field left out keeps its value; null means "never purge".
    saved = desk.policy(audit_event_days=None)
    assert (saved["closed_ticket_days"], saved["audit_event_days"]) == (90, None)
    assert _ok(desk.client.get(url, headers=desk.admin()))["closed_ticket_days"] == 90


def test_the_job_command_runs_one_workspace_as_the_system(
    desk: Desk, runtime: Runtime, start: datetime, cli: CliRunner
) -> None:
    with days_before(start, 31):
        desk.ticket(closed=True, comments=1)
    desk.policy(closed_ticket_days=30)
    preview = cli.invoke(cli_app, ["jobs", "retention", "--tenant", desk.ws.slug, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "dry run" in preview.output
    assert len(_ticket_ids(runtime, desk.ws)) == 1
    result = cli.invoke(cli_app, ["jobs", "retention", "--tenant", desk.ws.slug])
    assert result.exit_code == 0, result.output
    assert desk.ws.slug in result.output
    assert _ticket_ids(runtime, desk.ws) == []
    with tenant_transaction(runtime.sessions, desk.ws.schema_name, desk.ws.role_name) as session:
        runs = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "retention.run").order_by(AuditEvent.id)
        ).all()
    assert [(e.actor_id, e.actor_role, e.changes["tickets"]) for e in runs] == [
        (None, "system:retention", 1),
        (None, "system:retention", 1),
    ]


def test_the_job_command_reports_an_unknown_workspace(
    cli: CliRunner,
) -> None:
    result = cli.invoke(cli_app, ["jobs", "retention", "--tenant", "no_such_workspace"])
    assert result.exit_code == 1
    assert "no_such_workspace" in result.output


def test_the_job_skips_a_busy_workspace_and_one_being_deleted(
    desk: Desk, runtime: Runtime, service_runtime: Runtime, factory: Factory
) -> None:
    departing = factory.workspace()
    with transaction(runtime.sessions) as session:
        schedule_deletion(session, get_by_slug(session, departing.slug), timedelta(days=30))
    slugs = [desk.ws.slug, departing.slug]
    ws = desk.ws
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as holder:
        holder.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 5)"))
        outcomes = run_retention_job(service_runtime.sessions, slugs=slugs).workspaces
    assert [(o.slug, o.result, o.ok) for o in outcomes] == [(s, None, True) for s in slugs]
    assert "already under way" in (outcomes[0].skipped or "")
    assert outcomes[1].skipped == "deletion scheduled"
    (again,) = run_retention_job(service_runtime.sessions, slugs=[ws.slug], dry_run=True).workspaces
    assert again.result is not None
    assert again.result.dry_run is True


# API.md: compliance reads, changes and runs the policy; an admin may only read it.
RETENTION_MATRIX = [
    # role          GET policy  PUT policy  POST run
    ("admin",       200,        403,        403),
    ("agent",       403,        403,        403),
    ("viewer",      403,        403,        403),
    ("compliance",  200,        200,        200),
    ("customer",    403,        403,        403),
]  # fmt: skip


@pytest.mark.parametrize(("role", "read", "manage", "run"), RETENTION_MATRIX)
def test_who_may_read_change_and_run_the_policy(
    client: TestClient, factory: Factory, role: str, read: int, manage: int, run: int
) -> None:
    ws = factory.workspace()
    member = ws.admin if role == "admin" else factory.member(ws, role)
    headers = factory.headers(member, ws)
    statuses = (
        client.get(f"{API}/retention/policy", headers=headers).status_code,
        client.put(
            f"{API}/retention/policy", json={"legal_hold": False}, headers=headers
        ).status_code,
        client.post(f"{API}/retention/run?dry_run=true", headers=headers).status_code,
    )
    assert statuses == (read, manage, run)


def test_the_cutoff_keeps_what_is_exactly_at_it_and_purges_one_second_older(
    desk: Desk, runtime: Runtime, start: datetime
) -> None:
    """The boundary: a policy of N days keeps a ticket closed, and an event that occurred,
    exactly N days before the run, and purges one closed a second earlier (an off-by-one in
    either direction, a day or a comparison, fails here)."""
    now = start.replace(microsecond=0)
    cutoff = now - timedelta(days=30)
    older = cutoff - timedelta(seconds=1)
    with time_machine.travel(older, tick=False):
        past = desk.ticket(closed=True, comments=1)
    with time_machine.travel(cutoff, tick=False):
        at = desk.ticket(closed=True, comments=1)
    with tenant_transaction(runtime.sessions, desk.ws.schema_name, desk.ws.role_name) as session:
        rows = session.execute(text("SELECT id, status_changed_at FROM tickets")).all()
        closed: dict[int, datetime] = {row.id: row.status_changed_at for row in rows}
        at_cutoff = session.scalar(select(func.count()).where(AuditEvent.occurred_at == cutoff))
    assert closed == {past: older, at: cutoff}
    desk.policy(closed_ticket_days=30, audit_event_days=30)

    with time_machine.travel(now, tick=False):
        preview = desk.run(dry_run=True)
        report = desk.run()

    assert preview["ticket_cutoff"] == report["ticket_cutoff"]
    assert datetime.fromisoformat(report["ticket_cutoff"]) == cutoff
    assert datetime.fromisoformat(report["audit_cutoff"]) == cutoff
    assert (preview["tickets"], preview["comments"]) == (report["tickets"], report["comments"])
    assert (report["tickets"], report["comments"]) == (1, 1)
    assert _ticket_ids(runtime, desk.ws) == [at]
    with tenant_transaction(runtime.sessions, desk.ws.schema_name, desk.ws.role_name) as session:
        oldest = session.scalar(select(func.min(AuditEvent.occurred_at)))
        kept = session.scalar(select(func.count()).where(AuditEvent.occurred_at == cutoff))
        assert verify_workspace(session).valid
    assert oldest == cutoff  # every event a second older is gone, none at the cutoff is
    assert at_cutoff
    assert kept == at_cutoff
    assert preview["audit_events"] == report["audit_events"] > 0
