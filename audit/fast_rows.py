"""The common case of checking an export row, in a few microseconds, with orjson.

``orjson.dumps(value, option=OPT_SORT_KEYS)`` writes the same bytes as ``audit.chain.canonical``
for the values an export holds (strings, whole numbers, booleans, null, lists, objects) but not
for every float (``1e-7`` against ``1e-07``), and orjson reads no integer past 64 bits. So a row
that does not check out here is no verdict: the caller reads it again with ``audit.chain``,
which decides, with its own reasons. A row that does check out here would check out there too:
its fields serialise to bytes whose SHA-256 is the recorded hash, and those bytes are a JSON text
of the very values the row holds.
"""

import hashlib
from typing import Any, NamedTuple

import orjson

from audit.chain import CHAINED_FIELDS

_SORTED = orjson.OPT_SORT_KEYS
_NDJSON_KEYS = frozenset((*CHAINED_FIELDS, "personal", "prev_hash", "hash"))
_BOOLEANS = {"true": True, "false": False}
# A CSV row's cells by position, in the export's column order (audit.export_rows.COLUMNS; a
# test in tests/unit/test_fast_rows.py holds the two together).
(
    _ID,
    _OCCURRED_AT,
    _ACTOR_ID,
    _ACTOR_ROLE,
    _ACTION,
    _TARGET_TYPE,
    _TARGET_ID,
    _OUTCOME,
    _REQUEST_ID,
    _CHANGES,
    _PERSONAL_DATA,
    _PERSONAL_DIGEST,
    _PERSONAL,
    _PREV_HASH,
    _HASH,
) = _CELLS = range(15)


class Link(NamedTuple):
    """What the chain needs of a row once its own hashes are known to hold."""

    event_id: int
    prev_hash: str
    hash: str


def ndjson_row(line: bytes) -> Link | None:
    """The row's link if it holds the export's fields and its hash and personal digest match;
    None if it does not, or if only ``audit.chain`` can tell."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict or event.keys() != _NDJSON_KEYS:
        return None
    personal = event.pop("personal")
    prev_hash, digest = event.pop("prev_hash"), event.pop("hash")
    # What is left is exactly the chained fields.
    return _checked(event, personal, prev_hash, digest)


def csv_row(cells: list[str]) -> Link | None:
    """As ``ndjson_row``, for a CSV row's cells read with empty cells as null (the reading the
    export writes; the others are left to ``audit.export_file``)."""
    if len(cells) != len(_CELLS):
        return None
    try:
        event_id = int(cells[_ID])
        changes = orjson.loads(cells[_CHANGES])
        personal = orjson.loads(cells[_PERSONAL]) if cells[_PERSONAL] else None
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        return None
    personal_data = _BOOLEANS.get(cells[_PERSONAL_DATA])
    if personal_data is None:
        return None
    chained = {
        "id": event_id,
        "occurred_at": cells[_OCCURRED_AT] or None,
        "actor_id": cells[_ACTOR_ID] or None,
        "actor_role": cells[_ACTOR_ROLE] or None,
        "action": cells[_ACTION] or None,
        "target_type": cells[_TARGET_TYPE] or None,
        "target_id": cells[_TARGET_ID] or None,
        "outcome": cells[_OUTCOME] or None,
        "request_id": cells[_REQUEST_ID] or None,
        "changes": changes,
        "personal_data": personal_data,
        "personal_digest": cells[_PERSONAL_DIGEST] or None,
    }
    return _checked(chained, personal, cells[_PREV_HASH] or None, cells[_HASH] or None)


def _checked(chained: dict[str, Any], personal: Any, prev_hash: Any, digest: Any) -> Link | None:
    event_id = chained["id"]
    personal_digest = chained["personal_digest"]
    if (
        type(event_id) is not int
        or type(prev_hash) is not str
        or type(digest) is not str
        or type(personal_digest) is not str
    ):
        return None
    try:
        body = orjson.dumps(chained, option=_SORTED)
        held = None if personal is None else orjson.dumps(personal or {}, option=_SORTED)
    except orjson.JSONEncodeError:
        return None
    hashed = hashlib.sha256(prev_hash.encode())
    hashed.update(body)
    if hashed.hexdigest() != digest:
        return None
    if held is not None and hashlib.sha256(held).hexdigest() != personal_digest:
        return None
    return Link(event_id, prev_hash, digest)
