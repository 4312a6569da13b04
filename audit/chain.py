"""The hash chain: canonical encoding, hashing and verification, with no database in sight so
an exported file can be checked offline by the same code."""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# The fields an event's hash covers, in the export's column order.
CHAINED_FIELDS = (
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


def canonical(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def personal_digest(personal: Mapping[str, Any] | None) -> str:
    return hashlib.sha256(canonical(personal or {}).encode()).hexdigest()


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    body = canonical({name: fields.get(name) for name in CHAINED_FIELDS})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    events_checked: int
    first_invalid_id: int | None
    head: str


def verify_chain(events: Iterable[Mapping[str, Any]], start: str = GENESIS) -> Verdict:
    """Walk events in id order. Each needs the previous hash, its own recomputed hash, and, while
    its personal values are still held, their digest."""
    expected_prev = start
    checked = 0
    for event in events:
        checked += 1
        personal = event.get("personal")
        ok = (
            event["prev_hash"] == expected_prev
            and event_hash(expected_prev, event) == event["hash"]
            and (personal is None or personal_digest(personal) == event["personal_digest"])
        )
        if not ok:
            return Verdict(False, checked, int(event["id"]), expected_prev)
        expected_prev = event["hash"]
    return Verdict(True, checked, None, expected_prev)
