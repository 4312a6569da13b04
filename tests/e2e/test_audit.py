"""The workspace audit trail: one event per request, refusals kept, append-only, tamper-proof."""

import json
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError

from audit.chain import event_hash
from audit.models import AuditEvent
from audit.queries import verify_workspace
from audit.trail import Actor, chained_fields, record_event
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace

pytestmark = pytest.mark.e2e

API = "/api/v1"


def _events(runtime: Runtime, ws: Workspace) -> list[AuditEvent]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
    return events


def _ticket(client: TestClient, admin: dict[str, str]) -> int:
    body = {"title": "Audit me", "customer_email": "subject@example.com"}
    ticket_id: int = client.post(f"{API}/tickets", json=body, headers=admin).json()["id"]
    return ticket_id


def test_a_refusal_is_recorded_as_denied(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    viewer = factory.member(ws, "viewer")
    refused = client.patch(
        f"{API}/tickets/{ticket}", json={"title": "x"}, headers=factory.headers(viewer, ws)
    )
    assert refused.status_code == 403
    last = _events(runtime, ws)[-1]
    assert (last.action, last.outcome, last.actor_id) == (
        "tickets.update",
        "denied",
        viewer.user_id,
    )
    assert last.changes["route"] == "/tickets/{ticket_id}"
    assert last.personal["changes"]["path"] == f"/api/v1/tickets/{ticket}"


def test_a_refused_subject_request_keeps_the_address_out_of_the_hashed_changes(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    email = "hidden.subject@example.com"
    refused = client.get(f"{API}/gdpr/subjects/{email}/export", headers=factory.headers(agent, ws))
    assert refused.status_code == 403
    last = _events(runtime, ws)[-1]
    assert (last.action, last.outcome) == ("gdpr.export", "denied")
    assert email not in json.dumps(last.changes)
    assert last.changes["route"] == "/gdpr/subjects/{email}/export"
    assert email in last.personal["changes"]["path"]


def test_a_rolled_back_change_leaves_no_event(runtime: Runtime, ws: Workspace) -> None:
    before = len(_events(runtime, ws))
    with (  # noqa: PT012 - the failure follows the write
        pytest.raises(RuntimeError, match="boom"),
        tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session,
    ):
        record_event(session, actor=Actor.system("test"), action="ticket.update")
        raise RuntimeError("boom")
    assert len(_events(runtime, ws)) == before


def test_a_failed_request_leaves_no_success_event(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    client.patch(f"{API}/tickets/{ticket}", json={"status": "closed"}, headers=admin)
    before = len(_events(runtime, ws))
    illegal = client.patch(f"{API}/tickets/{ticket}", json={"status": "pending"}, headers=admin)
    assert illegal.status_code == 409
    assert len(_events(runtime, ws)) == before


# A change whose transaction fails at COMMIT, after the route recorded its event: a deferred
# constraint trigger, so the failure comes from PostgreSQL itself and nothing of ours is faked.
FAIL_AT_COMMIT = """
CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title = 'fail at commit' THEN RAISE EXCEPTION 'refused at commit'; END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit();
"""


def test_a_request_rolled_back_at_commit_leaves_no_event(
    app: FastAPI, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        _ticket(client, admin)  # a head for the failed request to link to
        _tamper(runtime, ws, FAIL_AT_COMMIT)
        before = _events(runtime, ws)
        failed = client.post(
            f"{API}/tickets",
            json={"title": "fail at commit", "customer_email": "subject@example.com"},
            headers={**admin, "X-Request-ID": "failed-at-commit"},
        )
        assert failed.status_code == 500
        # API.md: every response, this one too, is JSON with a code and carries X-Request-ID.
        assert failed.json()["code"] == "internal_error"
        assert failed.headers["x-request-id"] == "failed-at-commit"
        assert [e.id for e in _events(runtime, ws)] == [e.id for e in before]
        with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
            assert session.scalar(text("SELECT count(*) FROM tickets")) == 1
        # The next committed change is recorded and links to the head the failed one saw.
        _ticket(client, admin)
        after = _events(runtime, ws)[len(before) :]
        assert [e.action for e in after] == ["ticket.create"]
        assert after[0].prev_hash == before[-1].hash
        assert client.get(f"{API}/audit/verify", headers=admin).json()["valid"] is True


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_checkpoints SET last_hash = repeat('0', 64)",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_the_workspace_role_cannot_rewrite_the_trail(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], statement: str
) -> None:
    _ticket(client, admin)
    with (
        pytest.raises(ProgrammingError) as excinfo,
        tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session,
    ):
        session.execute(text(statement))
    assert isinstance(excinfo.value.orig, psycopg.errors.InsufficientPrivilege)


_COLUMNS = (
    "occurred_at, actor_id, actor_role, action, target_type, target_id, outcome, request_id,"
    " changes, personal_data, personal, personal_digest, prev_hash, hash"
)
# Swaps two neighbouring events whole (everything but their ids), as a reordering would.
SWAP_WITH_NEXT = (
    f"UPDATE audit_events a SET ({_COLUMNS}) = (SELECT {_COLUMNS} FROM audit_events b"
    " WHERE b.id = CASE WHEN a.id = {k} THEN {k} + 1 ELSE {k} END)"
    " WHERE a.id IN ({k}, {k} + 1)"
)


def _tamper(runtime: Runtime, ws: Workspace, sql: str) -> None:
    """As the owner (a superuser or migration role), as an intruder with database access would."""
    with transaction(runtime.sessions) as session:
        session.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": ws.schema_name}
        )
        session.execute(text(sql))


# kind -> (statement on event {k}, which event verify must name: 0 the tampered one, 1 the next)
TAMPERING = {
    "edit": ("UPDATE audit_events SET outcome = 'denied' WHERE id = {k}", 0),
    "edit-changes": ("UPDATE audit_events SET changes = '{{}}'::jsonb WHERE id = {k}", 0),
    "edit-personal": (
        'UPDATE audit_events SET personal = \'{{"ip": "1.2.3.4"}}\' WHERE id = {k}',
        0,
    ),
    "edit-link": ("UPDATE audit_events SET prev_hash = repeat('f', 64) WHERE id = {k}", 0),
    "delete": ("DELETE FROM audit_events WHERE id = {k}", 1),
    "reorder": (SWAP_WITH_NEXT, 0),
}
# Where in the chain: the oldest event, one in the middle, the newest. Deleting or swapping
# needs a successor to show: with the newest event gone the rest is a whole, shorter chain, and
# only a head held from outside (an export's manifest, X-Audit-Chain-Head) can tell.
POSITIONS = {"first": 0, "middle": 3, "newest": -1}


def _position(kind: str, where: str, ids: list[int]) -> int:
    index = POSITIONS[where]
    if where == "newest" and kind in {"delete", "reorder"}:
        index = -2
    return index % len(ids)


@pytest.mark.parametrize(
    ("kind", "where"), [(kind, where) for kind in TAMPERING for where in POSITIONS]
)
def test_tampering_is_detected_at_the_first_bad_event(
    client: TestClient,
    runtime: Runtime,
    ws: Workspace,
    admin: dict[str, str],
    kind: str,
    where: str,
) -> None:
    for _ in range(6):
        _ticket(client, admin)
    ids = [e.id for e in _events(runtime, ws)]
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        assert verify_workspace(session).valid
    sql, first_bad = TAMPERING[kind]
    index = _position(kind, where, ids)
    _tamper(runtime, ws, sql.format(k=ids[index]))
    verdict = client.get(f"{API}/audit/verify", headers=admin).json()
    assert verdict["valid"] is False
    assert verdict["first_invalid_id"] == ids[index + first_bad]


@pytest.mark.parametrize("where", ["first", "middle"])
def test_an_edit_with_a_recomputed_hash_is_caught_at_the_next_event(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], where: str
) -> None:
    for _ in range(6):
        _ticket(client, admin)
    events = _events(runtime, ws)
    target = events[POSITIONS[where]]
    forged = {**chained_fields(target), "outcome": "denied"}
    rehashed = event_hash(target.prev_hash, forged)
    _tamper(
        runtime,
        ws,
        f"UPDATE audit_events SET outcome = 'denied', hash = '{rehashed}' WHERE id = {target.id}",
    )
    verdict = client.get(f"{API}/audit/verify", headers=admin).json()
    assert verdict["valid"] is False
    assert verdict["first_invalid_id"] == events[POSITIONS[where] + 1].id


def test_verify_names_the_head_an_export_ended_at(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    _ticket(client, admin)
    exported = client.get(f"{API}/audit/export", params={"format": "ndjson"}, headers=admin)
    verdict = client.get(f"{API}/audit/verify", headers=admin).json()
    assert verdict["valid"] is True
    assert verdict["chain_head"] == exported.headers["x-audit-chain-head"]
    assert verdict["chain_head"] == _events(runtime, ws)[-2].hash  # before its own event


def test_cutting_off_the_newest_events_shows_against_a_head_held_from_before(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    """The one edit a hash chain cannot see by itself: with its newest events gone, the rest is a
    whole chain. An officer who noted the head earlier sees it missing from what comes back."""
    for _ in range(3):
        _ticket(client, admin)
    held = client.get(f"{API}/audit/verify", headers=admin).json()["chain_head"]
    _tamper(
        runtime,
        ws,
        f"DELETE FROM audit_events WHERE id >= (SELECT id FROM audit_events WHERE hash = '{held}')",
    )
    assert client.get(f"{API}/audit/verify", headers=admin).json()["chain_head"] != held
    exported = client.get(f"{API}/audit/export", params={"format": "ndjson"}, headers=admin)
    assert exported.status_code == 200
    assert held.encode() not in exported.content


def test_concurrent_writers_do_not_fork_the_chain(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: _ticket(client, admin), range(12)))
    events = _events(runtime, ws)
    assert len({e.prev_hash for e in events}) == len(events)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        verdict = verify_workspace(session)
    assert (verdict.valid, verdict.events_checked) == (True, len(events))


def test_events_api_shape_filters_and_no_secrets(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> None:
    ticket = _ticket(client, admin)
    client.post(
        f"{API}/members",
        json={
            "email": "secretive@example.com",
            "name": "S",
            "role": "agent",
            "password": "hunter2-hunter2",
        },
        headers=admin,
    )
    page = client.get(
        f"{API}/audit/events", params={"action": "ticket.create"}, headers=admin
    ).json()
    assert [e["target"] for e in page["items"]] == [{"type": "ticket", "id": str(ticket)}]
    event = page["items"][0]
    assert set(event) == {
        "id",
        "occurred_at",
        "actor",
        "action",
        "target",
        "outcome",
        "request_id",
        "ip",
        "user_agent",
        "changes",
        "personal_data",
        "prev_hash",
        "hash",
    }
    assert event["actor"] == {"id": str(ws.admin.user_id), "email": ws.admin.email, "role": "admin"}
    assert event["changes"]["customer_email"] == "subject@example.com"
    everything = client.get(f"{API}/audit/events", params={"limit": 200}, headers=admin).text
    assert "hunter2" not in everything
    compliance = factory.headers(factory.member(ws, "compliance"), ws)
    assert client.get(f"{API}/audit/events", headers=compliance).status_code == 200
    agent = factory.headers(factory.member(ws, "agent"), ws)
    assert client.get(f"{API}/audit/events", headers=agent).status_code == 403


def test_no_secret_or_password_hash_reaches_either_trail(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    password, secret = "first-password-4471", "webhook-signing-secret-9183"
    chosen = "chosen-password-2291"
    added = client.post(
        f"{API}/members",
        json={"email": "keeper@example.com", "name": "K", "role": "agent", "password": password},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    invited = client.post(
        f"{API}/members",
        json={"email": "invitee@example.com", "name": "I", "role": "agent"},
        headers=admin,
    ).json()
    invitation = invited["invitation_token"]
    accepted = client.post(
        f"{API}/auth/invitations/accept", json={"token": invitation, "password": chosen}
    )
    assert accepted.status_code == 200, accepted.text
    hook = client.post(
        f"{API}/webhooks",
        json={"url": "https://hooks.example.com/x", "events": ["ticket.created"], "secret": secret},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    login = {"email": "keeper@example.com", "tenant": ws.slug}
    client.post(f"{API}/auth/login", json={**login, "password": "wrong-guess-5520"})
    tokens = client.post(f"{API}/auth/login", json={**login, "password": password}).json()
    client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    with transaction(runtime.sessions) as session:
        hashes = list(
            session.scalars(
                text(
                    "SELECT password_hash FROM public.members WHERE tenant_id = :t AND email IN"
                    " ('keeper@example.com', 'invitee@example.com', :admin)"
                ),
                {"t": ws.id, "admin": ws.admin.email},
            )
        )
    assert len(hashes) == 3
    needles = [password, chosen, "wrong-guess-5520", secret, invitation, *hashes]
    needles += [tokens["access_token"], tokens["refresh_token"], "$argon2"]
    with transaction(runtime.sessions) as session:
        session.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": ws.schema_name}
        )
        # Whole rows as text: every column, changes and personal values included.
        found = {
            needle: session.scalar(
                text(
                    "SELECT (SELECT count(*) FROM audit_events e"
                    "        WHERE strpos(CAST(e AS text), :n) > 0)"
                    " + (SELECT count(*) FROM public.platform_audit_events p"
                    "        WHERE strpos(CAST(p AS text), :n) > 0)"
                ),
                {"n": needle},
            )
            for needle in [*needles, "keeper@example.com"]
        }
        recorded = session.scalar(
            text(
                "SELECT count(*) FROM audit_events WHERE action IN ('member.add', 'webhook.create')"
            )
        )
    assert recorded == 3  # the events are there; only their secrets are not
    # The sweep does find what is recorded: the new member's address, on both trails.
    assert found.pop("keeper@example.com") >= 2
    assert found == dict.fromkeys(needles, 0)


@pytest.mark.parametrize(
    ("changes", "kept"),
    [
        ({"password": "p", "role": "agent"}, {"role": "agent"}),
        ({"admin_password": "p", "refresh_token": "t"}, {}),
        (
            {"webhook": {"url": "u", "signing_secret": "s"}, "items": [{"token": "t", "n": 1}]},
            {"webhook": {"url": "u"}, "items": [{"n": 1}]},
        ),
        ({"user": {"name": "N", "password_hash": "$argon2id$..."}}, {"user": {"name": "N"}}),
    ],
)
def test_secret_fields_are_dropped_wherever_they_sit(
    runtime: Runtime, ws: Workspace, changes: dict[str, Any], kept: dict[str, Any]
) -> None:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        event = record_event(
            session, actor=Actor.system("test"), action="secret.test", changes=changes
        )
        stored = {**event.changes, **(event.personal or {}).get("changes", {})}
    assert stored == kept
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        assert verify_workspace(session).valid


def test_reading_the_trail_is_audited(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str]
) -> None:
    client.get(f"{API}/audit/events", headers=admin)
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        reads = session.scalar(select(func.count()).where(AuditEvent.action == "audit.read"))
    assert reads == 1


# Every field the hash covers, written out (not imported from audit.chain, so dropping one there
# fails here), with an edit to that column alone of a stored event. ``personal_digest`` goes with
# ``personal`` (as an erasure leaves it), so only the hash, not the digest check, can catch it.
STORED_FIELD_EDITS = {
    "id": "id = id + 1000",
    "occurred_at": "occurred_at = occurred_at + interval '1 microsecond'",
    "actor_id": "actor_id = 'a0000000-0000-4000-8000-000000000001'",
    "actor_role": "actor_role = 'owner'",
    "action": "action = 'ticket.read'",
    "target_type": "target_type = 'customer'",
    "target_id": "target_id = target_id || '0'",
    "outcome": "outcome = 'denied'",
    "request_id": "request_id = 'forged-request'",
    "changes": "changes = changes || '{\"forged\": true}'::jsonb",
    "personal_data": "personal_data = NOT personal_data",
    "personal_digest": "personal = NULL, personal_digest = repeat('e', 64)",
}


def test_the_stored_field_edits_cover_every_chained_field() -> None:
    from audit.chain import CHAINED_FIELDS

    assert set(STORED_FIELD_EDITS) == set(CHAINED_FIELDS)


@pytest.mark.parametrize("field", list(STORED_FIELD_EDITS))
def test_editing_any_one_chained_field_of_a_stored_event_fails_verification(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], field: str
) -> None:
    for _ in range(3):
        _ticket(client, admin)
    events = _events(runtime, ws)
    target = events[1]
    assert target.actor_id is not None
    assert target.request_id is not None
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        assert verify_workspace(session).valid
    edit = STORED_FIELD_EDITS[field]
    _tamper(runtime, ws, f"UPDATE audit_events SET {edit} WHERE id = {target.id}")
    verdict = client.get(f"{API}/audit/verify", headers=admin).json()
    assert verdict["valid"] is False
    # An id moved past the others breaks the link at its old successor instead.
    assert verdict["first_invalid_id"] == (events[2].id if field == "id" else target.id)
