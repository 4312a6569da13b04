"""The audit hash with no database: a known answer computed here from the documented canonical
form (``hash = sha256(prev_hash + canonical event)``, canonical = JSON with sorted keys, no
spaces, UTF-8 unescaped), and for every chained field, a change to it alone breaks the chain.

The list of chained fields is written out here, not imported, so a field dropped from
``audit.chain.CHAINED_FIELDS`` (or from the hash) fails a test instead of shrinking it."""

import hashlib
from typing import Any

import pytest

from audit.chain import CHAINED_FIELDS, GENESIS, event_hash, personal_digest, verify_chain

# Every field an event's hash must cover (API.md's export columns before the links).
FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "request_id",
    "changes",
    "personal_data",
    "personal_digest",
)
PREV = "ab" * 32
PERSONAL = {"actor_email": "zoë@example.com", "ip": "203.0.113.7", "user_agent": None}
EVENT: dict[str, Any] = {
    "id": 7,
    "occurred_at": "2026-03-01T09:30:00.123456+00:00",
    "actor_id": "0b7e4c1e-52a1-4c7e-9d0e-2f6a3b1c9d10",
    "actor_role": "agent",
    "action": "ticket.update",
    "target_type": "ticket",
    "target_id": "42",
    "outcome": "success",
    "request_id": "req-1",
    "changes": {"status": {"before": "open", "after": "pending"}, "priority": "high"},
    "personal_data": False,
    "personal_digest": "",  # filled below
}
# The canonical personal values, by hand: keys sorted, no spaces, non-ASCII as itself.
PERSONAL_TEXT = '{"actor_email":"zoë@example.com","ip":"203.0.113.7","user_agent":null}'
PERSONAL_DIGEST = hashlib.sha256(PERSONAL_TEXT.encode()).hexdigest()
EVENT["personal_digest"] = PERSONAL_DIGEST
# The canonical event, by hand, keys in sorted order (nested ones too).
EVENT_TEXT = (
    '{"action":"ticket.update",'
    '"actor_id":"0b7e4c1e-52a1-4c7e-9d0e-2f6a3b1c9d10",'
    '"actor_role":"agent",'
    '"changes":{"priority":"high","status":{"after":"pending","before":"open"}},'
    '"id":7,'
    '"occurred_at":"2026-03-01T09:30:00.123456+00:00",'
    '"outcome":"success",'
    f'"personal_data":false,"personal_digest":"{PERSONAL_DIGEST}",'
    '"request_id":"req-1",'
    '"target_id":"42",'
    '"target_type":"ticket"}'
)
# Another value of the same type for each field, so the change is the only difference.
CHANGED: dict[str, Any] = {
    "id": 8,
    "occurred_at": "2026-03-01T09:30:00.123457+00:00",
    "actor_id": "0b7e4c1e-52a1-4c7e-9d0e-2f6a3b1c9d11",
    "actor_role": "admin",
    "action": "ticket.delete",
    "target_type": "comment",
    "target_id": "43",
    "outcome": "denied",
    "request_id": "req-2",
    "changes": {"status": {"before": "open", "after": "closed"}, "priority": "high"},
    "personal_data": True,
    "personal_digest": "cd" * 32,
}


def test_the_chained_fields_are_the_documented_ones() -> None:
    assert set(CHAINED_FIELDS) == set(FIELDS)


def test_the_personal_digest_is_a_known_answer() -> None:
    assert personal_digest(PERSONAL) == PERSONAL_DIGEST
    assert personal_digest(None) == hashlib.sha256(b"{}").hexdigest()


def test_the_event_hash_is_a_known_answer() -> None:
    expected = hashlib.sha256((PREV + EVENT_TEXT).encode()).hexdigest()
    assert event_hash(PREV, EVENT) == expected
    # Fields outside the chain (the links, the personal values) do not change it.
    extra = {**EVENT, "hash": "x", "prev_hash": "y", "personal": {"ip": "198.51.100.1"}}
    assert event_hash(PREV, extra) == expected


def _chain() -> list[dict[str, Any]]:
    first = {**EVENT, "id": 7, "prev_hash": GENESIS, "personal": PERSONAL}
    first["hash"] = event_hash(GENESIS, first)
    second = {**EVENT, "id": 9, "prev_hash": first["hash"], "personal": PERSONAL}
    second["hash"] = event_hash(first["hash"], second)
    return [first, second]


def test_an_untouched_chain_verifies() -> None:
    verdict = verify_chain(_chain())
    assert (verdict.valid, verdict.events_checked, verdict.first_invalid_id) == (True, 2, None)


@pytest.mark.parametrize("field", FIELDS)
def test_changing_any_one_chained_field_breaks_the_chain(field: str) -> None:
    assert CHANGED[field] != EVENT[field]
    events = _chain()
    # Without its personal values (as after an erasure), so only the hash can catch a change.
    events[0]["personal"] = None
    assert verify_chain(events).valid
    events[0][field] = CHANGED[field]
    verdict = verify_chain(events)
    assert verdict.valid is False
    assert verdict.first_invalid_id == events[0]["id"]
    assert event_hash(PREV, {**EVENT, field: CHANGED[field]}) != event_hash(PREV, EVENT)


def test_erased_personal_values_still_verify_but_edited_ones_do_not() -> None:
    events = _chain()
    events[1]["personal"] = None  # erased: the digest still stands in for them
    assert verify_chain(events).valid
    events[0]["personal"] = {**PERSONAL, "ip": "198.51.100.1"}
    verdict = verify_chain(events)
    assert (verdict.valid, verdict.first_invalid_id) == (False, 7)
