"""List cursors decode to a row id only when they are exactly what the API issued."""

import base64

import pytest

from helpdesk.core.errors import InvalidInput
from helpdesk.core.pagination import decode_cursor, encode_cursor

pytestmark = pytest.mark.unit


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("id:²", "a superscript digit: str.isdigit() accepts it, int() does not"),
        ("id:١٢", "Arabic-Indic digits: int() would accept them"),
        ("id:\uff11\uff12", "full-width digits: int() would accept them"),
        ("id:+1", "a sign"),
        ("id:-1", "a negative id"),
        ("id: 1", "white space, which int() strips"),
        ("id:1_000", "an underscore, which int() accepts"),
        ("id:9223372036854775808", "past bigint"),
        ("k:1", "another kind of cursor"),
        ("id:", "no value"),
    ],
)
def test_a_cursor_that_is_not_ascii_digits_is_invalid(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(_cursor(raw))
    assert refused.value.code == "invalid_cursor", why


@pytest.mark.parametrize("last_id", [0, 1, 42, 2**63 - 1])
def test_an_issued_cursor_decodes_to_its_id(last_id: int) -> None:
    assert decode_cursor(encode_cursor(last_id)) == last_id
