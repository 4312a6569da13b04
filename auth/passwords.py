"""Password hashing with the passlib API (libpass), argon2id first.

Hashing costs about 140 ms: call these from plain ``def`` routes (FastAPI's thread pool), never
from the event loop.
"""

from passlib.context import CryptContext

MIN_PASSWORD_LENGTH = 8
# argon2 accepts any length; the cap stops a megabyte "password" from being a cheap DoS.
MAX_PASSWORD_BYTES = 1024

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


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return f"a password may hold at most {MAX_PASSWORD_BYTES} bytes"
    return None


def hash_password(password: str) -> str:
    return str(_context.hash(password))


def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """Return (matches, replacement hash when the stored one used outdated parameters)."""
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return False, None
    if stored_hash is None:
        _context.verify(password, _DUMMY_HASH)
        return False, None
    matches, new_hash = _context.verify_and_update(password, stored_hash)
    return bool(matches), new_hash
