"""The password rule (NIST SP 800-63B): 8 to 256 code points after NFKC, not a common password,
not the account's own address; and whatever the rule lets an account have can sign in."""

import pytest

from auth.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    password_problem,
    use_hash_profile,
    verify_password,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True, scope="module")
def _fast_hashing() -> None:
    use_hash_profile("fast")


EMAIL = "Ceo.Office@Gamma-Corp.com"
# "password" in full-width letters (U+FF50...), which NFKC folds to ASCII.
FULL_WIDTH_PASSWORD = "".join(chr(ord(letter) + 0xFEE0) for letter in "password")

# (password, e-mail of the account, refused?, why)
RULES: list[tuple[str, str | None, bool, str]] = [
    ("password", None, True, "the most common password"),
    ("11111111", None, True, "common"),
    ("12345678", None, True, "common"),
    ("PassWord", None, True, "common, whatever the case"),
    (FULL_WIDTH_PASSWORD, None, True, "common after NFKC (full-width letters)"),
    ("qwertyuiop", None, True, "common"),
    ("seven77", None, True, "7 code points"),
    ("ﬀﬀﬀﬀ", None, False, "4 ligatures are 8 letters after NFKC"),
    ("e\u0301e\u0301e\u0301e\u0301", None, True, "8 code points, 4 after NFKC"),
    ("€" * 256, None, False, "256 code points (768 bytes) is the most"),
    ("€" * 257, None, True, "257 code points"),
    ("€" * 400, None, True, "400 code points"),
    ("a quiet tangerine harbour", None, False, "a passphrase"),
    ("ceo.office@gamma-corp.com", EMAIL, True, "the account's address, whatever the case"),
    ("CEO.OFFICE", EMAIL, True, "the address's local part"),
    ("ceo.office@gamma-corp.com", None, False, "someone else's address is just a long string"),
    ("ceo.office-2026", EMAIL, False, "more than the local part"),
]


@pytest.mark.parametrize(("password", "email", "refused", "why"), RULES)
def test_password_rule(password: str, email: str | None, refused: bool, why: str) -> None:
    assert (password_problem(password, email=email) is not None) == refused, why


def test_the_cap_is_256_code_points() -> None:
    assert MAX_PASSWORD_LENGTH == 256


@pytest.mark.parametrize(
    "password",
    ["€" * 256, "a" * 256, "ﬀ" * 128, "x" * 8, "Ångström-kilowatt"],
)
def test_every_password_the_rule_accepts_can_sign_in(password: str) -> None:
    assert password_problem(password) is None
    assert verify_password(password, hash_password(password))[0]


def test_a_password_signs_in_with_either_unicode_form() -> None:
    composed, decomposed = "Ångström-kilowatt", "A\u030angstro\u0308m-kilowatt"
    assert verify_password(decomposed, hash_password(composed))[0]
    assert verify_password(composed, hash_password(decomposed))[0]


def test_a_hash_of_the_unnormalised_password_still_verifies_and_is_replaced() -> None:
    # Hashes made before passwords were normalised hashed the text as typed.
    from auth.passwords import _context

    typed = "A\u030angstro\u0308m-kilowatt"
    legacy = str(_context.hash(typed))
    matches, replacement = verify_password(typed, legacy)
    assert matches
    assert replacement is not None
    assert verify_password("Ångström-kilowatt", replacement)[0]
