"""Opaque list cursors: clients pass back what they were given and never build one."""

import base64
import binascii

from helpdesk.core.errors import InvalidInput
from helpdesk.core.input import MAX_ROW_ID


def _encode(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode(kind: str, cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid() from exc
    prefix, _, value = raw.partition(":")
    if prefix != kind or not value or "\x00" in value:
        raise _invalid()
    return value


def _invalid() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this API issued.",
        code="invalid_cursor",
        field="cursor",
        source="query",
    )


def encode_cursor(last_id: int) -> str:
    return _encode("id", str(last_id))


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    value = _decode("id", cursor)
    if not value.isdigit() or int(value) > MAX_ROW_ID:
        raise _invalid()
    return int(value)


def encode_key_cursor(last_key: str) -> str:
    return _encode("k", last_key)


def decode_key_cursor(cursor: str | None) -> str | None:
    return _decode("k", cursor) if cursor else None
