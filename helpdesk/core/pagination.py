"""Opaque list cursors: clients pass back what they were given and never build one."""

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Protocol, TypeVar

from pydantic import Field

from helpdesk.core.errors import InvalidInput
from helpdesk.core.input import MAX_ROW_ID

# API.md: ?limit= from 1 to 200; each list gives the default, 50, where it declares the parameter.
# A pydantic bound, not fastapi's Query: core stays free of HTTP (a service or job may page with
# these helpers), and FastAPI reads a scalar route parameter from the query string anyway, with
# the same 422 and the same OpenAPI schema.
Limit = Annotated[int, Field(ge=1, le=200)]


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T")
Row = TypeVar("Row", bound=_Identified)


def _encode(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode(kind: str, cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc
    prefix, _, value = raw.partition(":")
    if prefix != kind or not value or "\x00" in value:
        raise invalid_cursor()
    return value


def invalid_cursor() -> InvalidInput:
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
    return row_id_of(_decode("id", cursor))


def row_id_of(value: str) -> int:
    """A row id from a cursor's text; anything this API did not issue is refused."""
    # ASCII digits only: str.isdigit() also accepts "²" (which int() refuses, a 500) and int()
    # accepts "١٢", " 1" and "1_0", none of which this API ever issued.
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ROW_ID:
        raise invalid_cursor()
    return int(value)


def encode_key_cursor(last_key: str) -> str:
    return _encode("k", last_key)


def decode_key_cursor(cursor: str | None) -> str | None:
    return _decode("k", cursor) if cursor else None


def _page(
    items: Sequence[T], limit: int, cursor_of: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """Lists fetch ``limit + 1`` rows: the first ``limit`` are the page, and an extra one only
    says that another page follows, starting after the page's last item."""
    page = list(items[:limit])
    return page, cursor_of(page[-1]) if len(items) > limit else None


def id_page(items: Sequence[Row], limit: int) -> tuple[list[Row], str | None]:
    """The page and the next cursor of a list ordered by id."""
    return _page(items, limit, lambda item: encode_cursor(item.id))


def key_page(items: Sequence[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The page and the next cursor of a list ordered by ``key``."""
    return _page(items, limit, lambda item: encode_key_cursor(key(item)))
