"""The privilege ceiling as a table: what a caller lacks to grant a role's permissions."""

import pytest

from auth.permissions import BUILTIN_ROLES, Permission
from auth.roles import beyond_appointment_ceiling, beyond_ceiling

P = Permission
ADMIN = BUILTIN_ROLES["admin"]


@pytest.mark.parametrize(
    ("held", "granted", "missing"),
    [
        ({P.ROLES_MANAGE}, set(), []),
        ({P.ROLES_MANAGE}, {P.ROLES_MANAGE}, []),
        ({P.ROLES_MANAGE}, {P.ROLES_MANAGE, P.GDPR_ERASE}, ["gdpr.erase"]),
        (ADMIN, ADMIN, []),
        (ADMIN, {P.GDPR_ERASE, P.RETENTION_RUN}, ["gdpr.erase", "retention.run"]),
        # tickets.receive marks an auto-assignment candidate and grants no right: anyone may.
        ({P.ROLES_MANAGE}, {P.TICKETS_RECEIVE}, []),
        (ADMIN, {P.TICKETS_RECEIVE, P.TICKETS_BULK}, []),
    ],
)
def test_a_caller_grants_only_what_it_holds(
    held: set[Permission], granted: set[Permission], missing: list[str]
) -> None:
    assert beyond_ceiling(frozenset(held), granted) == missing


@pytest.mark.parametrize(
    ("held", "role", "missing"),
    [
        ({P.MEMBERS_MANAGE}, "compliance", []),  # the one exception
        ({P.ROLES_MANAGE}, "compliance", sorted(p.value for p in BUILTIN_ROLES["compliance"])),
        ({P.MEMBERS_MANAGE}, "admin", sorted(p.value for p in ADMIN - {P.MEMBERS_MANAGE})),
        ({P.MEMBERS_MANAGE}, "customer", ["comments.create", "tickets.create", "tickets.read"]),
        (ADMIN, "agent", []),
        (ADMIN, "compliance", []),
    ],
)
def test_appointing_a_built_in_role(held: set[Permission], role: str, missing: list[str]) -> None:
    assert beyond_appointment_ceiling(frozenset(held), role, BUILTIN_ROLES[role]) == missing
