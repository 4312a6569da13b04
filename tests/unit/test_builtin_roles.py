"""The built-in roles hold exactly the permissions of API.md's table, and nothing more.

The table below is copied from API.md ("Built-in roles"), not derived from ``auth.permissions``:
any permission added to or removed from a built-in role in the code fails here, including those
(tickets.assign, retention.read, ...) that only some routes' finer rules consult.
"""

import pytest

from auth.permissions import BUILTIN_ROLES, BUILTIN_TICKET_SCOPES, Permission, TicketScope
from auth.roles import all_permission_names, resolve_role

pytestmark = pytest.mark.unit

ROLES = ("admin", "agent", "viewer", "compliance", "customer")

# permission: the roles whose column is not "-" (API.md's "all", "own", "yes", "internal only",
# "public, own tickets" all grant the permission; the reach is the ticket scope, below).
API_TABLE: dict[str, frozenset[str]] = {
    "tickets.read": frozenset({"admin", "agent", "viewer", "customer"}),
    "tickets.create": frozenset({"admin", "agent", "customer"}),
    "tickets.update": frozenset({"admin", "agent"}),
    "tickets.assign": frozenset({"admin", "agent"}),
    "tickets.delete": frozenset({"admin"}),
    "tickets.export": frozenset({"admin"}),
    "tickets.bulk": frozenset({"admin", "agent"}),
    "tickets.receive": frozenset({"agent"}),
    "comments.create": frozenset({"admin", "agent", "viewer", "customer"}),
    "customers.read": frozenset({"admin", "agent", "viewer", "compliance"}),
    "customers.write": frozenset({"admin", "agent"}),
    "members.manage": frozenset({"admin"}),
    "sla.alerts": frozenset({"admin"}),
    "roles.manage": frozenset({"admin"}),
    "webhooks.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin", "compliance"}),
    "audit.export": frozenset({"admin", "compliance"}),
    "audit.verify": frozenset({"admin", "compliance"}),
    "gdpr.export": frozenset({"compliance"}),
    "gdpr.erase": frozenset({"compliance"}),
    "retention.read": frozenset({"admin", "compliance"}),
    "retention.manage": frozenset({"compliance"}),
    "retention.run": frozenset({"compliance"}),
    # Ours, beyond API.md's table (docs/DECISIONS.md): the workspace settings.
    "settings.manage": frozenset({"admin"}),
}


def test_the_permission_vocabulary_is_api_mds() -> None:
    assert all_permission_names() == sorted(API_TABLE)
    assert set(BUILTIN_ROLES) == set(ROLES) == set(BUILTIN_TICKET_SCOPES)


@pytest.mark.parametrize("role", ROLES)
def test_a_builtin_role_holds_exactly_its_column(role: str) -> None:
    expected = {Permission(name) for name, holders in API_TABLE.items() if role in holders}
    permissions, _ = resolve_role(role, None, None)
    assert permissions == expected


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("admin", TicketScope.ALL),
        ("agent", TicketScope.ALL),
        ("viewer", TicketScope.ALL),
        ("compliance", TicketScope.ALL),
        ("customer", TicketScope.OWN),
    ],
)
def test_a_builtin_roles_ticket_reach(role: str, scope: TicketScope) -> None:
    assert resolve_role(role, None, None)[1] == scope


def test_a_custom_role_with_a_builtin_name_cannot_widen_it() -> None:
    # The stored permissions of a same-named custom role never override the table.
    permissions, scope = resolve_role("viewer", ["tickets.delete", "gdpr.erase"], "all")
    assert permissions == {Permission(n) for n, who in API_TABLE.items() if "viewer" in who}
    assert scope == TicketScope.ALL


def test_an_unknown_role_grants_nothing() -> None:
    assert resolve_role("ghost", None, None)[0] == frozenset()
