"""GDPR subject requests over HTTP: the access export, erasure that leaves the address nowhere in
the workspace while its ticket statistics and audit chain survive, and who may ask."""

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import select, text

from audit.models import AuditEvent
from audit.trail import Actor, record_event
from helpdesk.app import API_PREFIX
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

API = API_PREFIX
PHONE = "+442079460958"
SURNAME = "Zebedee"


@pytest.fixture
def officer(factory: Factory, ws: Workspace) -> dict[str, str]:
    return factory.headers(factory.member(ws, "compliance"), ws)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _sql(runtime: Runtime, ws: Workspace, statement: str, **params: Any) -> list[Any]:
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        result = session.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


@dataclass(frozen=True)
class World:
    subject: Member
    subject_headers: dict[str, str]
    customer_id: int
    own_tickets: list[int]  # requested by the subject
    other_ticket: int  # another customer's, with a comment that mentions the subject


def _world(client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace) -> World:
    """A subject who signs in as a customer, with tickets, comments, messages, webhook deliveries,
    a delivery error and audit events about them, and another customer who mentions them."""
    _sql(
        runtime,
        ws,
        "INSERT INTO webhooks (url, events, secret) VALUES ('https://hooks.example.com/in',"
        " ARRAY['ticket.created', 'ticket.updated', 'comment.created'], 'hook-secret')",
    )
    admin = factory.headers(ws.admin, ws)
    agent = factory.headers(factory.member(ws, "agent"), ws)
    subject = factory.member(ws, "customer")
    mine = factory.headers(subject, ws)
    first = _ok(
        client.post(
            f"{API}/tickets",
            json={"title": "My invoice is wrong", "description": "Billed twice in March"},
            headers=mine,
        ),
        201,
    )
    customer_id = first["customer"]["id"]
    _ok(
        client.patch(
            f"{API}/customers/{customer_id}",
            json={"name": f"Pat {SURNAME}", "phone": PHONE, "company": "Zebedee Widgets"},
            headers=admin,
        )
    )
    second = _ok(
        client.post(
            f"{API}/tickets",
            json={
                "title": f"Call back {subject.email.upper()}",
                "description": f"Reach {subject.email} on {PHONE}",
                "customer_email": subject.email,
                "priority": "high",
                "tags": ["phone"],
            },
            headers=agent,
        ),
        201,
    )
    _ok(
        client.post(
            f"{API}/tickets/{first['id']}/comments",
            json={"body": "Any news? My order ref is 42."},
            headers=mine,
        ),
        201,
    )
    _ok(
        client.post(
            f"{API}/tickets/{first['id']}/comments",
            json={"body": "Refund issued."},
            headers=agent,
        ),
        201,
    )
    _ok(client.patch(f"{API}/tickets/{first['id']}", json={"status": "resolved"}, headers=agent))
    _ok(client.patch(f"{API}/tickets/{first['id']}", json={"status": "closed"}, headers=agent))
    other = _ok(
        client.post(
            f"{API}/tickets",
            json={"title": "Shared account", "customer_email": "someone.else@example.com"},
            headers=agent,
        ),
        201,
    )
    _ok(
        client.post(
            f"{API}/tickets/{other['id']}/comments",
            json={"body": f"Also concerns {subject.email}.", "public": False},
            headers=agent,
        ),
        201,
    )
    _ok(client.get(f"{API}/customers/{customer_id}", headers=admin))
    outbox_id = _sql(runtime, ws, "SELECT min(id) FROM outbox WHERE kind = 'email'")[0][0]
    _sql(
        runtime,
        ws,
        "INSERT INTO delivery_attempts (outbox_id, status_code, error) VALUES (:o, 550, :e)",
        o=outbox_id,
        e=f"550 5.1.1 <{subject.email}>: mailbox unavailable",
    )
    return World(subject, mine, customer_id, [first["id"], second["id"]], other["id"])


def _mentions(runtime: Runtime, ws: Workspace, needle: str) -> dict[str, int]:
    """Rows holding ``needle`` (case-insensitively), per column, over every column of every table
    in the workspace's schema, whatever its type (text, json(b), arrays, tsvector, composite...),
    each read as text."""
    with transaction(runtime.sessions) as session:
        # From the catalogue, not information_schema: it lists every column, whatever the
        # privileges of whoever asks.
        columns = session.execute(
            text(
                "SELECT c.relname, a.attname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
                " AND NOT a.attisdropped"
                " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'm')"
                " ORDER BY c.relname, a.attnum"
            ),
            {"schema": ws.schema_name},
        ).all()
        swept = {table for table, _ in columns}
        # The sweep really covers the workspace: every table with personal data in it is here.
        assert {
            "customers", "tickets", "comments", "outbox", "delivery_attempts", "audit_events",
            "webhooks", "ticket_tags",
        } <= swept  # fmt: skip
        raw = session.connection().connection.driver_connection
        assert raw is not None
        found = {}
        for table, column in columns:
            query = sql.SQL(
                "SELECT count(*) FROM {t} WHERE strpos(lower(CAST({c} AS text)), %s) > 0"
            ).format(t=sql.Identifier(ws.schema_name, table), c=sql.Identifier(column))
            count = raw.execute(query, (needle.lower(),)).fetchone()[0]
            if count:
                found[f"{table}.{column}"] = count
    return found


_STATISTICS = (
    "SELECT id, status, priority, category, customer_id, assignee_id, sla_due_at,"
    " first_response_at, sla_breached, escalated, status_changed_at, created_at, updated_at,"
    " (SELECT count(*) FROM comments c WHERE c.ticket_id = t.id) AS comments,"
    " (SELECT array_agg(tag ORDER BY tag) FROM ticket_tags g WHERE g.ticket_id = t.id) AS tags"
    " FROM tickets t ORDER BY id"
)


def test_the_export_holds_everything_about_the_subject(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace, officer: dict[str, str]
) -> None:
    world = _world(client, runtime, factory, ws)
    email = world.subject.email
    export = _ok(client.get(f"{API}/gdpr/subjects/{email.upper()}/export", headers=officer))

    assert export["subject"] == email
    assert export["workspace"]["slug"] == ws.slug
    assert export["customer"]["id"] == world.customer_id
    assert (export["customer"]["email"], export["customer"]["phone"]) == (email, PHONE)
    assert [(m["user_id"], m["role"]) for m in export["memberships"]] == [
        (str(world.subject.user_id), "customer")
    ]
    assert [t["id"] for t in export["tickets"]] == world.own_tickets
    assert export["tickets"][1]["tags"] == ["phone"]
    # The two comments on their ticket (theirs and the reply); the note elsewhere is not theirs.
    comments = {c["body"]: c["by_subject"] for c in export["comments"]}
    assert comments == {"Any news? My order ref is 42.": True, "Refund issued.": False}
    assert {m["recipient"] for m in export["messages"]} == {email}
    # Which e-mail service handled each (none yet: nothing was sent in this test).
    assert {m["provider"] for m in export["messages"]} == {None}
    actions = {e["action"] for e in export["audit_events"]}
    assert {"ticket.create", "comment.create", "customer.update", "customer.read"} <= actions

    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (last.action, last.target_type, last.target_id) == (
        "gdpr.export",
        "customer",
        str(world.customer_id),
    )
    assert last.personal is not None
    assert last.personal["changes"] == {"email": email}  # kept apart, so it can be erased
    assert email not in str(last.changes)


def test_an_export_for_an_unknown_address_is_empty(
    client: TestClient, officer: dict[str, str]
) -> None:
    export = _ok(client.get(f"{API}/gdpr/subjects/nobody@example.com/export", headers=officer))
    assert export["customer"] is None
    assert export["tickets"] == export["comments"] == export["messages"] == []


def test_erasure_leaves_the_address_nowhere_and_keeps_ticket_statistics(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace, officer: dict[str, str]
) -> None:
    world = _world(client, runtime, factory, ws)
    email = world.subject.email
    _ok(client.get(f"{API}/gdpr/subjects/{email}/export", headers=officer))
    for needle in (email, SURNAME, PHONE):
        assert _mentions(runtime, ws, needle), needle  # the sweep finds them before erasure
    statistics = _sql(runtime, ws, _STATISTICS)

    counts = _ok(client.post(f"{API}/gdpr/subjects/{email}/erase", headers=officer))

    assert counts["customers"] == 1
    assert counts["tickets"] == 2  # their two tickets; the other one only had a comment
    assert counts["comments"] == 2  # theirs, and the internal note that named them
    assert counts["messages"] >= 2
    assert counts["audit_events"] >= 6
    assert counts["unerasable_audit_events"] == 0
    for needle in (email, SURNAME, PHONE):
        assert _mentions(runtime, ws, needle) == {}, needle
    assert _sql(runtime, ws, _STATISTICS) == statistics

    customer = _sql(
        runtime, ws, "SELECT email, name, company, phone FROM customers WHERE id = :c",
        c=world.customer_id,
    )  # fmt: skip
    assert customer == [(f"erased-{world.customer_id}@invalid", "", None, None)]
    bodies = _sql(runtime, ws, "SELECT body FROM comments ORDER BY id")
    assert [b for (b,) in bodies] == [
        "[redacted]",
        "Refund issued.",
        "Also concerns [erased].",
    ]
    titles = _sql(runtime, ws, "SELECT title, description FROM tickets ORDER BY id")
    assert titles[:2] == [("[redacted]", "[redacted]")] * 2
    assert titles[2] == ("Shared account", "")
    unsent = _sql(
        runtime,
        ws,
        "SELECT recipient, failed_at IS NOT NULL FROM outbox WHERE kind = 'email' AND"
        " recipient LIKE 'erased-%'",
    )
    assert unsent
    assert all(failed for _, failed in unsent)

    verdict = _ok(client.get(f"{API}/audit/verify", headers=officer))
    assert verdict["valid"] is True
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(2)).all()
    erase = last[1]  # before the verify
    assert (erase.action, erase.target_id) == ("gdpr.erase", str(world.customer_id))
    assert erase.changes["customers"] == 1

    again = _ok(client.post(f"{API}/gdpr/subjects/{email}/erase", headers=officer))
    assert again == dict.fromkeys(counts, 0)
    assert _ok(client.get(f"{API}/audit/verify", headers=officer))["valid"] is True
    # The erased subject's own sign-in still works, and finds no trace of who they were.
    mine = _ok(client.get(f"{API}/tickets/mine", headers=world.subject_headers))
    assert mine["items"] == []


def test_erasure_leaves_lookalike_addresses_alone(
    client: TestClient,
    runtime: Runtime,
    ws: Workspace,
    admin: dict[str, str],
    officer: dict[str, str],
) -> None:
    lookalikes = ("spat@example.com", "pat@example.com.au", "pat.o@example.com")
    for email in ("pat@example.com", *lookalikes):
        _ok(
            client.post(
                f"{API}/tickets", json={"title": "Hi", "customer_email": email}, headers=admin
            ),
            201,
        )
    note = "cc Pat@Example.com, spat@example.com, pat@example.com.au and pat.o@example.com."
    _ok(client.post(f"{API}/tickets/4/comments", json={"body": note}, headers=admin), 201)

    counts = _ok(client.post(f"{API}/gdpr/subjects/pat@example.com/erase", headers=officer))

    assert (counts["customers"], counts["tickets"], counts["comments"]) == (1, 1, 1)
    (body,) = _sql(runtime, ws, "SELECT body FROM comments")[0]
    assert body == "cc [erased], spat@example.com, pat@example.com.au and pat.o@example.com."
    emails = {e for (e,) in _sql(runtime, ws, "SELECT email FROM customers")}
    assert emails == {"erased-1@invalid", *lookalikes}
    kept = _sql(runtime, ws, "SELECT count(*) FROM audit_events WHERE personal IS NOT NULL"
                " AND target_type = 'ticket' AND target_id IN ('2', '3', '4')")  # fmt: skip
    assert kept == [(3,)]


def test_an_address_in_a_hashed_audit_field_is_reported_not_rewritten(
    client: TestClient, runtime: Runtime, ws: Workspace, officer: dict[str, str]
) -> None:
    # Not a personal field, so the trail hashes it with the event and no erasure may change it.
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        record_event(
            session,
            actor=Actor.system("import"),
            action="legacy.import",
            changes={"source": "crm export for kim@example.com"},
        )
    counts = _ok(client.post(f"{API}/gdpr/subjects/kim@example.com/erase", headers=officer))
    assert counts["unerasable_audit_events"] == 1
    assert _ok(client.get(f"{API}/audit/verify", headers=officer))["valid"] is True


def test_erasing_an_unknown_address_changes_nothing(
    client: TestClient, officer: dict[str, str]
) -> None:
    counts = _ok(client.post(f"{API}/gdpr/subjects/ghost@example.com/erase", headers=officer))
    assert set(counts.values()) == {0}


def test_erasure_waits_for_a_legal_hold_to_be_lifted(
    client: TestClient, factory: Factory, ws: Workspace, officer: dict[str, str]
) -> None:
    admin = factory.headers(ws.admin, ws)
    _ok(client.post(f"{API}/customers", json={"email": "held@example.com"}, headers=admin), 201)
    _ok(client.put(f"{API}/retention/policy", json={"legal_hold": True}, headers=officer))
    refused = client.post(f"{API}/gdpr/subjects/held@example.com/erase", headers=officer)
    assert (refused.status_code, refused.json()["code"]) == (409, "legal_hold")
    _ok(client.put(f"{API}/retention/policy", json={"legal_hold": False}, headers=officer))
    assert _ok(client.post(f"{API}/gdpr/subjects/held@example.com/erase", headers=officer)) == {
        "customers": 1,
        "tickets": 0,
        "comments": 0,
        "messages": 0,
        "audit_events": 1,
        "unerasable_audit_events": 0,
    }


@pytest.mark.parametrize(
    "address", ["not-an-email", "two@@example.com", "spa ce@example.com", 'quo"te@example.com']
)
def test_a_malformed_address_is_422(
    client: TestClient, officer: dict[str, str], address: str
) -> None:
    response = client.get(f"{API}/gdpr/subjects/{address}/export", headers=officer)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "email"]


# API.md: GDPR requests are the compliance role's alone.
GDPR_MATRIX = [
    # role          export  erase
    ("admin",       403,    403),
    ("agent",       403,    403),
    ("viewer",      403,    403),
    ("compliance",  200,    200),
    ("customer",    403,    403),
]  # fmt: skip


@pytest.mark.parametrize(("role", "export", "erase"), GDPR_MATRIX)
def test_who_may_make_subject_requests(
    client: TestClient, factory: Factory, ws: Workspace, role: str, export: int, erase: int
) -> None:
    member = ws.admin if role == "admin" else factory.member(ws, role)
    headers = factory.headers(member, ws)
    base = f"{API}/gdpr/subjects/matrix@example.com"
    exported = client.get(f"{base}/export", headers=headers)
    erased = client.post(f"{base}/erase", headers=headers)
    assert (exported.status_code, erased.status_code) == (export, erase)
    if erase == 403:
        assert "permission" in erased.json()["detail"]
