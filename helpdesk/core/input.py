"""Rules every request's input obeys before any of it reaches PostgreSQL."""

from typing import Any

from pydantic import BaseModel, field_validator

# Ids inside a workspace are bigint identity columns, counting from 1: a number outside these
# bounds can name nothing (and one outside bigint would fail in PostgreSQL, as a 500).
MIN_ROW_ID = 1
MAX_ROW_ID = 2**63 - 1


def holds_nul(value: Any) -> bool:
    """Whether ``value`` (a string, or a list or dict holding strings) contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    return False


class RequestModel(BaseModel):
    """The base of every request body and query model. PostgreSQL text cannot hold NUL, so a
    string carrying one is refused here, as a 422 naming its field, instead of failing in the
    database as a 500."""

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError("text may not contain the NUL character (U+0000)")
        return value
