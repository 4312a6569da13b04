"""Password hashing with the passlib API (libpass), argon2id first, and the rule a new password
obeys (NIST SP 800-63B section 3.1.1.2).

Hashing costs about 140 ms: call these from plain ``def`` routes (FastAPI's thread pool), never
from the event loop.

Every length is counted one way, in code points after NFKC normalisation, and the normalised text
is what is hashed, so a password typed composed on one keyboard and decomposed on another is the
same password, and whatever the rule accepts at creation signs in.
"""

import unicodedata
from functools import lru_cache

from passlib.context import CryptContext

MIN_PASSWORD_LENGTH = 8
# argon2 has no input limit (unlike bcrypt's 72 bytes); the cap only keeps a megabyte
# "password" from being a cheap way to burn CPU. Request schemas bound the field the same.
MAX_PASSWORD_LENGTH = 256
# Sign-in refuses without hashing only beyond this: passwords set before the 256 cap held up to
# 1,024 bytes, and those must keep signing in.
MAX_LOGIN_PASSWORD_LENGTH = 1024

# "fast" exists for test suites and demos on small machines: argon2id with 1 MiB and one pass.
# A hash made under one profile is upgraded at the next login under the other.
_PROFILES = {
    "strong": {},
    "fast": {"argon2__memory_cost": 1024, "argon2__time_cost": 1, "argon2__parallelism": 1},
}
_context = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified when the email is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _context.hash("not-a-real-password")


def use_hash_profile(profile: str) -> None:
    global _DUMMY_HASH  # noqa: PLW0603 - the process-wide hashing policy, set once at start-up
    _context.load({"schemes": ["argon2"], "deprecated": "auto", **_PROFILES[profile]})
    _DUMMY_HASH = _context.hash("not-a-real-password")


def normalized(password: str) -> str:
    """The password as it is counted and hashed (NFKC, as SP 800-63B recommends)."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most frequent passwords of public breach corpora, lower-cased, in
    # the package itself: no network call, and loaded on first use rather than at import.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why ``password`` cannot be set for the account with address ``email``, or None."""
    text = normalized(password)
    if len(text) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(text) > MAX_PASSWORD_LENGTH:
        return f"a password may hold at most {MAX_PASSWORD_LENGTH} characters"
    folded = text.casefold()
    if folded in _common_passwords():
        return "that password is one of the most common ones; choose another"
    if email:
        address = normalized(email).casefold()
        if folded in {address, address.rpartition("@")[0]}:
            return "a password may not be the account's own e-mail address"
    return None


def require_usable_password(password: str, email: str | None = None) -> str:
    """``password`` if the rule accepts it; else ValueError, which a pydantic validator turns
    into a 422 naming the field."""
    problem = password_problem(password, email)
    if problem:
        raise ValueError(problem)
    return password


def hash_password(password: str) -> str:
    return str(_context.hash(normalized(password)))


def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """Return (matches, replacement hash when the stored one used outdated parameters or was made
    of the password as typed, before passwords were normalised)."""
    text = normalized(password)
    if len(text) > MAX_LOGIN_PASSWORD_LENGTH:
        return False, None
    if stored_hash is None:
        _context.verify(text, _DUMMY_HASH)
        return False, None
    matches, new_hash = _context.verify_and_update(text, stored_hash)
    # A hash made before normalisation, of a password whose typed form is not NFKC.
    if not matches and text != password and _context.verify(password, stored_hash):
        return True, hash_password(password)
    return bool(matches), new_hash
