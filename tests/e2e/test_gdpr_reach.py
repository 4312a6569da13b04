"""Erasure reaches what others wrote about the subject (issue 13, finding 5): the assignee's
e-mail subject, webhook ``changes`` diffs, agents' replies and other tickets' text, audit events'
personal values and so the /audit/export download. Each is found by the address, the full name
as a whole-word phrase in any case, and the phone in E.164 and in national format; the ticket
statistics and the audit chain (online and in an export verified offline) survive."""

import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audit.export_file import verify_export
from helpdesk.app import API_PREFIX
from helpdesk.runtime import Runtime
from tests.e2e.test_gdpr import _STATISTICS, _mentions, _ok, _sql
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.e2e

API = API_PREFIX
NAME = "Pat Zebedee"
E164 = "+442079460958"
INTERNATIONAL = "+44 20 7946 0958"
NATIONAL = "020 7946 0958"
NATIONAL_DIGITS = "02079460958"
# Each must be gone from every column of every table, and from the audit export.
NEEDLES = (NAME, E164, INTERNATIONAL, NATIONAL, NATIONAL_DIGITS)


@pytest.fixture
def officer(factory: Factory, ws: Workspace) -> dict[str, str]:
    return factory.headers(factory.member(ws, "compliance"), ws)


@dataclass(frozen=True)
class World:
    subject: Member
    own_ticket: int
    reply: int  # an agent's reply on the subject's ticket that names her
    other_ticket: int  # another customer's ticket, assigned, that names her


def _world(client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace) -> World:
    _sql(
        runtime,
        ws,
        "INSERT INTO webhooks (url, events, secret) VALUES ('https://hooks.example.com/in',"
        " ARRAY['ticket.created', 'ticket.updated', 'comment.created'], 'hook-secret')",
    )
    admin = factory.headers(ws.admin, ws)
    agent_member = factory.member(ws, "agent")
    agent = factory.headers(agent_member, ws)
    subject = factory.member(ws, "customer")
    mine = factory.headers(subject, ws)
    own = _ok(
        client.post(f"{API}/tickets", json={"title": "Printer jam"}, headers=mine),
        201,
    )
    _ok(
        client.patch(
            f"{API}/customers/{own['customer']['id']}",
            json={"name": NAME, "phone": E164},
            headers=admin,
        )
    )
    reply = _ok(
        client.post(
            f"{API}/tickets/{own['id']}/comments",
            json={"body": f"Hi {NAME.swapcase()}, we will call you on {NATIONAL} today."},
            headers=agent,
        ),
        201,
    )
    other = _ok(
        client.post(
            f"{API}/tickets",
            json={
                "title": f"Callback for {NAME}",
                "description": f"Her mobile is {INTERNATIONAL}; office line {NATIONAL_DIGITS}.",
                "customer_email": "someone.else@example.com",
                "priority": "high",
            },
            headers=agent,
        ),
        201,
    )
    # Assigning sends the assignee an e-mail whose subject is the ticket's title; retitling
    # puts the name into a webhook's ``changes`` diff and a ticket.update audit event.
    _ok(
        client.patch(
            f"{API}/tickets/{other['id']}",
            json={"assignee_id": str(agent_member.user_id)},
            headers=admin,
        )
    )
    _ok(
        client.patch(
            f"{API}/tickets/{other['id']}",
            json={"title": f"{NAME.upper()} called again, ring {E164}"},
            headers=agent,
        )
    )
    _ok(
        client.post(
            f"{API}/tickets/{other['id']}/comments",
            json={"body": f"Spoke to {NAME.lower()} at {NATIONAL}.", "public": False},
            headers=agent,
        ),
        201,
    )
    return World(subject, own["id"], reply["id"], other["id"])


def _export(client: TestClient, officer: dict[str, str]) -> bytes:
    response = client.get(f"{API}/audit/export", params={"format": "ndjson"}, headers=officer)
    assert response.status_code == 200, response.text
    content: bytes = response.content
    return content


def test_erasure_reaches_what_others_wrote_about_the_subject(
    client: TestClient, runtime: Runtime, factory: Factory, ws: Workspace, officer: dict[str, str]
) -> None:
    world = _world(client, runtime, factory, ws)
    email = world.subject.email
    before = _export(client, officer).lower()
    for needle in NEEDLES:
        # The sweep sees each one before erasure, where the finding saw them.
        found = _mentions(runtime, ws, needle)
        assert found, needle
        assert needle.lower().encode() in before, needle
    assert "outbox.payload" in _mentions(runtime, ws, NAME)
    assert "audit_events.personal" in _mentions(runtime, ws, NAME)
    statistics = _sql(runtime, ws, _STATISTICS)

    counts = _ok(client.post(f"{API}/gdpr/subjects/{email}/erase", headers=officer))

    assert counts["unerasable_audit_events"] == 0
    for needle in (email, *NEEDLES):
        assert _mentions(runtime, ws, needle) == {}, needle
    assert _sql(runtime, ws, _STATISTICS) == statistics
    # What others wrote stays, but for the subject.
    bodies = dict(_sql(runtime, ws, "SELECT id, body FROM comments"))
    assert bodies[world.reply] == "Hi [erased], we will call you on [erased] today."
    ((title, description),) = _sql(
        runtime, ws, "SELECT title, description FROM tickets WHERE id = :t", t=world.other_ticket
    )
    assert title == "[erased] called again, ring [erased]"
    assert description == "Her mobile is [erased]; office line [erased]."
    subjects = [s for (s,) in _sql(runtime, ws, "SELECT payload ->> 'subject' FROM outbox")]
    assert f"[#{world.other_ticket}] assigned to you: Callback for [erased]" in subjects

    # The chain verifies, online and in an export checked offline, which holds none of it.
    assert _ok(client.get(f"{API}/audit/verify", headers=officer))["valid"] is True
    exported = _export(client, officer)
    verdict = verify_export(io.BytesIO(exported))
    assert verdict.valid, verdict.reason
    for needle in (email, *NEEDLES):
        assert needle.lower().encode() not in exported.lower(), needle

    # A second erasure finds nothing left.
    again = _ok(client.post(f"{API}/gdpr/subjects/{email}/erase", headers=officer))
    assert again == dict.fromkeys(counts, 0)


def test_the_name_is_erased_only_as_a_whole_phrase(
    client: TestClient, runtime: Runtime, ws: Workspace, admin: dict[str, str], officer: Any
) -> None:
    customer = _ok(
        client.post(
            f"{API}/customers",
            json={"email": "pat@example.com", "name": NAME, "phone": E164},
            headers=admin,
        ),
        201,
    )
    ticket = _ok(
        client.post(
            f"{API}/tickets",
            json={"title": "Hi", "customer_email": "kim@example.com"},
            headers=admin,
        ),
        201,
    )
    note = (
        f"cc {NAME}, Pat Zebedeeson, Spat Zebedee, {NAME.upper()}; "
        f"+4420794609581, 1{NATIONAL_DIGITS}, {NATIONAL}."
    )
    _ok(
        client.post(f"{API}/tickets/{ticket['id']}/comments", json={"body": note}, headers=admin),
        201,
    )

    _ok(client.post(f"{API}/gdpr/subjects/pat@example.com/erase", headers=officer))

    ((body,),) = _sql(runtime, ws, "SELECT body FROM comments")
    assert body == (
        "cc [erased], Pat Zebedeeson, Spat Zebedee, [erased]; "
        "+4420794609581, 102079460958, [erased]."
    )
    assert _sql(runtime, ws, "SELECT name FROM customers WHERE id = :c", c=customer["id"]) == [
        ("",)
    ]
