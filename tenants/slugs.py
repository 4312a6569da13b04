"""The slug rule and the names derived from a slug."""

import re

from helpdesk.core.errors import InvalidInput

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{2,39}$")
SLUG_RULE = (
    "a slug is 3 to 40 characters: a lowercase letter, then lowercase letters, digits or "
    "underscores, and may not start with 'pg_'"
)
SCHEMA_PREFIX = "tenant_"


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.fullmatch(slug) or slug.startswith("pg_"):
        raise InvalidInput(
            f"Invalid slug {slug!r}: {SLUG_RULE}.", code="invalid_slug", field="slug"
        )
    return slug


def schema_name(slug: str) -> str:
    # The slug rule keeps this within PostgreSQL's 63-byte identifier limit, and the prefix keeps
    # tenant schemas apart from public, pg_* and information_schema.
    return SCHEMA_PREFIX + slug


def role_name(slug: str) -> str:
    return SCHEMA_PREFIX + slug
