"""Audit export: a streamed file that verifies offline, and stops verifying after any edit."""

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from audit import export_copy, export_file, queries
from audit.chain import canonical
from audit.export_file import ExportFormat, FileVerdict, verify_export
from audit.models import AuditEvent
from helpdesk.cli.audit import audit_app
from helpdesk.compliance import export_routes
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"
FORMATS = [ExportFormat.NDJSON, ExportFormat.CSV]


def _activity(client: TestClient, admin: dict[str, str], tickets: int = 2) -> None:
    """A few events of several kinds, personal values included."""
    for n in range(tickets):
        ticket = client.post(
            f"{API}/tickets",
            json={"title": f"Printer {n} on fire", "customer_email": f"c{n}@example.com"},
            headers=admin,
        ).json()
        client.post(
            f"{API}/tickets/{ticket['id']}/comments", json={"body": "On my way"}, headers=admin
        )
    client.get(f"{API}/customers", headers=admin)


def _export(
    client: TestClient, headers: dict[str, str], fmt: str = "ndjson", **filters: str
) -> bytes:
    response = client.get(f"{API}/audit/export", params={"format": fmt, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def _check(data: bytes, **kwargs: Any) -> FileVerdict:
    return verify_export(io.BytesIO(data), **kwargs)


def _manifest(data: bytes) -> dict[str, Any]:
    last = data.splitlines()[-1]
    if last.startswith(b"#manifest "):
        parsed: dict[str, Any] = json.loads(last[len(b"#manifest ") :])
        return parsed
    return dict(json.loads(last)["manifest"])


def _events(runtime: Runtime, ws: Workspace) -> list[AuditEvent]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
    return events


def _tamper(runtime: Runtime, ws: Workspace, sql: str) -> None:
    """As the owner, as an intruder with database access would."""
    with transaction(runtime.sessions) as session:
        session.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": ws.schema_name}
        )
        session.execute(text(sql))


def _purge_first_two(runtime: Runtime, ws: Workspace, events: list[AuditEvent]) -> None:
    """What a retention purge leaves: the oldest events gone, a checkpoint naming the last."""
    _tamper(
        runtime,
        ws,
        "INSERT INTO audit_checkpoints (created_at, last_purged_id, last_hash, purged_count)"
        f" VALUES (now(), {events[1].id}, '{events[1].hash}', 2);"
        f" DELETE FROM audit_events WHERE id <= {events[1].id}",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_is_an_attachment_that_verifies_offline(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], fmt: str
) -> None:
    _activity(client, admin)
    response = client.get(f"{API}/audit/export", params={"format": fmt}, headers=admin)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert disposition.endswith(f'.{fmt}"')
    assert ws.slug in disposition
    assert response.headers["content-type"].startswith(
        "text/csv" if fmt == "csv" else "application/x-ndjson"
    )

    verdict = _check(response.content)
    assert verdict.valid, verdict.reason
    assert verdict.format == fmt
    assert verdict.complete_chain is True
    manifest = _manifest(response.content)
    # The file ends at the export's own event: the head named before the body was sent.
    events = _events(runtime, ws)
    export_event = next(e for e in events if e.action == "audit.export")
    assert response.headers["x-audit-chain-head"] == manifest["chain_head"] == export_event.hash
    assert verdict.chain_head == export_event.hash
    assert verdict.rows == manifest["rows"] == export_event.id - events[0].id + 1
    assert manifest["format"] == fmt
    assert manifest["workspace"] == ws.slug
    assert manifest["filters"] == {}
    assert manifest["chain_start"] == "0" * 64
    assert _check(response.content, expected_head=export_event.hash).valid


def test_an_ndjson_row_holds_the_chained_form_with_its_personal_values(
    client: TestClient, ws: Workspace, admin: dict[str, str]
) -> None:
    _activity(client, admin, tickets=1)
    lines = _export(client, admin).splitlines()
    rows = [json.loads(line) for line in lines[:-1]]
    assert list(rows[0]) == list(export_file.COLUMNS)
    created = next(r for r in rows if r["action"] == "ticket.create")
    assert created["personal"]["actor_email"] == ws.admin.email
    assert created["personal"]["changes"]["title"] == "Printer 0 on fire"
    assert rows[-1]["action"] == "audit.export"
    assert rows[-1]["changes"] == {"format": "ndjson", "filters": {}}
    assert set(json.loads(lines[-1])) == {"manifest"}


def _offsets(data: bytes) -> dict[str, int]:
    """Byte positions worth naming in a file, one per kind of content (the first row is the
    ticket's creation)."""
    lines = data.splitlines(keepends=True)
    first_row = 1 if lines[0].startswith(b"id,") else 0
    row_start = sum(len(line) for line in lines[:first_row])
    row_end = row_start + len(lines[first_row])
    row = lines[first_row]
    manifest_start = len(data) - len(lines[-1])
    manifest = lines[-1]
    offsets = {
        "row id": row_start + (0 if first_row else row.index(b'"id":') + 5),
        "row action": row_start + row.index(b"ticket.create") + 3,
        "row timestamp": row_start + row.index(b"+00:00") - 2,
        "row hash": row_end - 3,
        "row newline": row_end - 1,
        "personal email": data.index(b"@example.com") + 1,
        "manifest rows": manifest_start + manifest.index(b'"rows":') + 7,
        "manifest exported_at": manifest_start + manifest.index(b'"exported_at":') + 16,
        "manifest sha256": manifest_start + manifest.index(b'"sha256":') + 10,
        "manifest head": manifest_start + manifest.index(b'"chain_head":') + 14,
        "final newline": len(data) - 1,
    }
    if first_row:
        offsets["csv header"] = 5
    return offsets


PLACES = [
    "row id",
    "row action",
    "row timestamp",
    "row hash",
    "row newline",
    "personal email",
    "manifest rows",
    "manifest exported_at",
    "manifest sha256",
    "manifest head",
    "final newline",
]


@pytest.mark.parametrize(
    ("fmt", "where"),
    [(fmt, where) for fmt in FORMATS for where in PLACES] + [(ExportFormat.CSV, "csv header")],
)
def test_a_one_byte_edit_fails_verification(
    client: TestClient, admin: dict[str, str], fmt: str, where: str
) -> None:
    _activity(client, admin, tickets=1)
    data = _export(client, admin, fmt)
    assert _check(data).valid
    edited = bytearray(data)
    edited[_offsets(data)[where]] ^= 0x01
    verdict = _check(bytes(edited))
    assert not verdict.valid, (where, verdict)
    assert verdict.reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_single_byte_can_be_changed_unnoticed(
    client: TestClient, factory: Factory, fmt: str
) -> None:
    small = factory.workspace()
    headers = factory.headers(small.admin, small)
    _activity(client, headers, tickets=1)
    data = _export(client, headers, fmt)
    assert _check(data).valid
    for offset in range(len(data)):
        edited = bytearray(data)
        edited[offset] ^= 0x01
        assert not _check(bytes(edited)).valid, (offset, data[offset - 20 : offset + 20])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "damage",
    ["no manifest", "manifest cut", "last row gone", "first row gone", "rows swapped", "empty"],
)
def test_a_damaged_file_fails_verification(
    client: TestClient, admin: dict[str, str], fmt: str, damage: str
) -> None:
    _activity(client, admin, tickets=1)
    data = _export(client, admin, fmt)
    lines = data.splitlines(keepends=True)
    head, rows, manifest = (
        (lines[:1], lines[1:-1], lines[-1]) if fmt == "csv" else ([], lines[:-1], lines[-1])
    )
    damaged = {
        "no manifest": b"".join(head + rows),
        "manifest cut": b"".join([*head, *rows, manifest[: len(manifest) // 2]]),
        "last row gone": b"".join([*head, *rows[:-1], manifest]),
        "first row gone": b"".join([*head, *rows[1:], manifest]),
        "rows swapped": b"".join([*head, rows[1], rows[0], *rows[2:], manifest]),
        "empty": b"",
    }[damage]
    verdict = _check(damaged)
    assert not verdict.valid
    assert verdict.reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_recomputed_manifest_does_not_hide_an_edited_row(
    client: TestClient, admin: dict[str, str], fmt: str
) -> None:
    _activity(client, admin, tickets=1)
    data = _export(client, admin, fmt)
    edited = data.replace(b"ticket.create", b"ticket.delete", 1)
    lines = edited.splitlines(keepends=True)
    rows = b"".join(lines[:-1])
    manifest = _manifest(data)
    manifest["sha256"] = hashlib.sha256(rows).hexdigest()
    manifest["manifest_sha256"] = export_file.manifest_digest(manifest)
    forged = rows + (
        b"#manifest " + canonical(manifest).encode() + b"\n"
        if fmt == "csv"
        else canonical({"manifest": manifest}).encode() + b"\n"
    )
    verdict = _check(forged)
    assert not verdict.valid
    assert "hash" in verdict.reason
    assert verdict.first_invalid_id is not None


def test_a_file_ending_elsewhere_than_the_expected_head_fails(
    client: TestClient, admin: dict[str, str]
) -> None:
    data = _export(client, admin)
    assert not _check(data, expected_head="f" * 64).valid


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_filtered_export_verifies_its_rows(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], fmt: str
) -> None:
    _activity(client, admin)
    data = _export(client, admin, fmt, action="ticket.create")
    verdict = _check(data)
    assert verdict.valid, verdict.reason
    assert verdict.complete_chain is False
    assert verdict.rows == 2
    manifest = _manifest(data)
    assert manifest["filters"] == {"action": "ticket.create"}
    assert manifest["chain_head"] == _events(runtime, ws)[-1].hash

    edited = bytearray(data)
    edited[data.index(b"Printer")] ^= 0x01
    assert not _check(bytes(edited)).valid


def test_each_export_is_audited_with_its_format_and_filters(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _export(client, admin, "csv", outcome="success")
    last = _events(runtime, ws)[-1]
    assert last.action == "audit.export"
    assert last.outcome == "success"
    assert last.actor_id == ws.admin.user_id
    assert last.personal_data is True
    assert last.changes == {"format": "csv", "filters": {"outcome": "success"}}


def test_a_compliance_member_may_export_and_an_agent_may_not(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    officer = factory.member(ws, "compliance")
    assert _check(_export(client, factory.headers(officer, ws), "csv")).valid

    agent = factory.member(ws, "agent")
    refused = client.get(f"{API}/audit/export", headers=factory.headers(agent, ws))
    assert refused.status_code == 403
    assert "permission" in refused.json()["detail"]
    last = _events(runtime, ws)[-1]
    assert (last.action, last.outcome, last.actor_id) == ("audit.export", "denied", agent.user_id)


def test_an_unknown_format_is_a_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get(f"{API}/audit/export", params={"format": "xml"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "format"]


def test_the_export_streams_rows_as_it_reads_them(
    client: TestClient,
    runtime: Runtime,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _activity(client, admin, tickets=5)
    read = 0
    real_lines = export_copy.copy_lines

    def counting(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        nonlocal read
        for line in real_lines(*args, **kwargs):
            read += 1
            yield line

    monkeypatch.setattr(export_routes.export_copy, "copy_lines", counting)
    monkeypatch.setattr(export_routes, "CHUNK_BYTES", 1)
    chunks: list[bytes] = []
    read_when_first_chunk_arrived = -1
    with client.stream("GET", f"{API}/audit/export", headers=admin) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            if not chunks:
                read_when_first_chunk_arrived = read
            chunks.append(chunk)
    verdict = _check(b"".join(chunks))
    assert verdict.valid, verdict.reason
    assert verdict.rows == read > 10
    # One chunk per row: the first left before the rest were read, not after a full list.
    assert len(chunks) >= verdict.rows
    assert read_when_first_chunk_arrived < verdict.rows


def test_an_abandoned_download_gives_its_connection_back(
    client: TestClient,
    runtime: Runtime,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _activity(client, admin, tickets=3)
    monkeypatch.setattr(export_routes, "CHUNK_BYTES", 1)
    checked_out = runtime.engine.pool.checkedout()  # type: ignore[attr-defined]
    with client.stream("GET", f"{API}/audit/export", headers=admin) as response:
        first = next(response.iter_raw())
        assert first
    assert runtime.engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]
    # Nothing was left holding the workspace: the next export runs and verifies.
    assert _check(_export(client, admin)).valid


def test_an_export_after_erasure_and_a_purge_still_verifies(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _activity(client, admin)
    events = _events(runtime, ws)
    # An erasure drops personal values (the digest stays); a purge leaves a checkpoint.
    _tamper(runtime, ws, f"UPDATE audit_events SET personal = NULL WHERE id = {events[2].id}")
    _purge_first_two(runtime, ws, events)
    data = _export(client, admin)
    verdict = _check(data)
    assert verdict.valid, verdict.reason
    assert _manifest(data)["chain_start"] == events[1].hash


def test_a_purge_committed_while_the_export_starts_does_not_split_the_file(
    client: TestClient,
    runtime: Runtime,
    ws: Workspace,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _activity(client, admin)
    events = _events(runtime, ws)
    real_start = queries.chain_start

    def start_then_purge(session: Any) -> str:
        start = real_start(session)
        _purge_first_two(runtime, ws, events)  # another transaction, committed
        return start

    monkeypatch.setattr(export_routes.queries, "chain_start", start_then_purge)
    data = _export(client, admin)
    # One snapshot: the start read before the purge, and the rows as they were then.
    verdict = _check(data)
    assert verdict.valid, verdict.reason
    assert verdict.rows == len(events) + 1
    assert _manifest(data)["chain_start"] == "0" * 64


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_tampered_trail_exports_a_file_that_fails(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], fmt: str
) -> None:
    _activity(client, admin)
    target = _events(runtime, ws)[2]
    _tamper(runtime, ws, f"UPDATE audit_events SET outcome = 'error' WHERE id = {target.id}")
    verdict = _check(_export(client, admin, fmt))
    assert not verdict.valid
    assert verdict.first_invalid_id == target.id


# Written by the exporter before rows came from COPY (release 0.1): floats, a 20-digit integer,
# quotes, commas, a line break, a control character, non-ASCII text, a null beside an empty
# string, personal values absent, present and empty.
KNOWN_ANSWER = Path(__file__).parent.parent / "fixtures" / "audit_exports"
KNOWN_HEAD = "e98e9f7cc29b4b439c3b5a1fea17b1ff243184dc03d8a84b5c3b38ecccf641e5"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_exported_by_the_earlier_release_still_verifies(fmt: ExportFormat) -> None:
    verdict = verify_export(KNOWN_ANSWER / f"v1.{fmt.value}", expected_head=KNOWN_HEAD)
    assert (verdict.valid, verdict.rows, verdict.reason) == (
        True,
        3,
        "3 events verified, a complete chain",
    )


def _known_events() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (KNOWN_ANSWER / "v1.ndjson").read_bytes().splitlines()[:-1]
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_events_exported_now_hash_the_same(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], fmt: ExportFormat
) -> None:
    """The known-answer events, stored in a workspace and exported through COPY: every row
    still hashes to its recorded hash, so the hashed form of an event has not changed."""
    known = _known_events()
    # Their own ids (3, 6, 9) are in the hash, so they are stored as they are: a fresh
    # workspace's trail holds none yet (it begins with this test's first request).
    with transaction(runtime.sessions) as session:
        session.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": ws.schema_name}
        )
        for event in known:
            session.execute(
                text(
                    "INSERT INTO audit_events (id, occurred_at, actor_id, actor_role, action,"
                    " target_type, target_id, outcome, request_id, changes, personal_data,"
                    " personal, personal_digest, prev_hash, hash) VALUES (:id,"
                    " CAST(:occurred_at AS timestamptz), CAST(:actor_id AS uuid), :actor_role,"
                    " :action, :target_type, :target_id, :outcome, :request_id,"
                    " CAST(:changes AS jsonb), :personal_data, CAST(:personal AS jsonb),"
                    " :personal_digest, :prev_hash, :hash)"
                ),
                {
                    **event,
                    "changes": json.dumps(event["changes"]),
                    "personal": None
                    if event["personal"] is None
                    else json.dumps(event["personal"]),
                },
            )
    data = _export(client, admin, fmt.value, until="2024-02-01T00:00:00Z")
    verdict = _check(data)
    assert (verdict.valid, verdict.rows) == (True, 3), verdict.reason
    rows = [line for line in data.splitlines()[:-1] if not line.startswith(b"id,")]
    assert len(rows) == 3
    if fmt is ExportFormat.NDJSON:
        assert [json.loads(row) for row in rows] == known


# The command line.


@pytest.mark.parametrize("fmt", FORMATS)
def test_verify_file_exits_0_for_an_export_and_1_once_edited(
    client: TestClient, admin: dict[str, str], tmp_path: Path, fmt: str
) -> None:
    _activity(client, admin, tickets=1)
    response = client.get(f"{API}/audit/export", params={"format": fmt}, headers=admin)
    exported = tmp_path / f"trail.{fmt}"
    exported.write_bytes(response.content)
    runner = CliRunner()

    valid = runner.invoke(audit_app, ["verify-file", str(exported)])
    assert valid.exit_code == 0, valid.output
    assert valid.output.startswith("valid:")
    head = response.headers["x-audit-chain-head"]
    assert head in valid.output
    assert runner.invoke(audit_app, ["verify-file", str(exported), "--head", head]).exit_code == 0
    wrong_head = runner.invoke(audit_app, ["verify-file", str(exported), "--head", "0" * 64])
    assert wrong_head.exit_code == 1

    exported.write_bytes(response.content.replace(b"ticket.create", b"ticket.crEate", 1))
    edited = runner.invoke(audit_app, ["verify-file", str(exported)])
    assert edited.exit_code == 1
    assert edited.output.startswith("INVALID:")
    assert len(edited.output.splitlines()) == 1


def test_the_installed_command_verifies_a_file_with_no_database_in_reach(
    client: TestClient, admin: dict[str, str], tmp_path: Path
) -> None:
    """A third party runs ``helpdesk audit verify-file`` on their own machine: a separate process
    whose only database address leads nowhere."""
    _activity(client, admin, tickets=1)
    data = _export(client, admin, "csv")
    exported = tmp_path / "trail.csv"
    exported.write_bytes(data)
    command = [str(Path(sys.executable).with_name("helpdesk")), "audit", "verify-file"]
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/nothing?connect_timeout=1",
    }

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [*command, str(exported)], env=env, capture_output=True, text=True, check=False
        )

    valid = verify()
    assert (valid.returncode, valid.stdout.split(":")[0]) == (0, "valid"), valid.stderr
    edited = bytearray(data)
    edited[data.index(b"ticket.create")] ^= 0x01
    exported.write_bytes(bytes(edited))
    invalid = verify()
    assert (invalid.returncode, invalid.stdout.split(":")[0]) == (1, "INVALID"), invalid.stderr


def test_verify_file_reads_stdin_and_refuses_a_missing_file(
    client: TestClient, admin: dict[str, str], tmp_path: Path
) -> None:
    data = _export(client, admin)
    runner = CliRunner()
    assert runner.invoke(audit_app, ["verify-file", "-"], input=data).exit_code == 0
    missing = runner.invoke(audit_app, ["verify-file", str(tmp_path / "nope.ndjson")])
    assert missing.exit_code == 2


def test_audit_verify_checks_a_workspace_chain_in_the_database(
    cli: CliRunner, client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _activity(client, admin, tickets=1)
    valid = cli.invoke(audit_app, ["verify", "--tenant", ws.slug])
    assert valid.exit_code == 0, valid.output
    assert valid.output.startswith("valid:")
    recorded = _events(runtime, ws)[-1]
    assert (recorded.action, recorded.actor_role) == ("audit.verify", "system:cli")
    assert recorded.changes["valid"] is True

    target = _events(runtime, ws)[1]
    _tamper(runtime, ws, f"UPDATE audit_events SET action = 'x' WHERE id = {target.id}")
    invalid = cli.invoke(audit_app, ["verify", "--tenant", ws.slug])
    assert invalid.exit_code == 1
    assert f"event {target.id}" in invalid.output

    unknown = cli.invoke(audit_app, ["verify", "--tenant", "no_such_workspace"])
    assert unknown.exit_code == 2


def test_the_openapi_document_describes_the_export(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/audit/export"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {"format", "action", "actor_id", "since", "until", "outcome"} <= set(parameters)
    assert set(operation["responses"]["200"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert {"401", "403", "422"} <= set(operation["responses"])
