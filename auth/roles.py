"""Resolving a member's role to permissions, and the rules custom roles obey."""

import re

from auth.permissions import BUILTIN_ROLES, BUILTIN_TICKET_SCOPES, MARKS, Permission, TicketScope

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
CUSTOM_SCOPES = (TicketScope.ALL, TicketScope.ASSIGNED)


def resolve_role(
    role: str, custom_permissions: list[str] | None, custom_scope: str | None
) -> tuple[frozenset[Permission], TicketScope]:
    """Permissions and ticket reach of ``role``; an unknown role grants nothing."""
    if role in BUILTIN_ROLES:
        return BUILTIN_ROLES[role], BUILTIN_TICKET_SCOPES[role]
    if custom_permissions is None:
        return frozenset(), TicketScope.ALL
    known = {p.value for p in Permission}
    permissions = frozenset(Permission(p) for p in custom_permissions if p in known)
    return permissions, TicketScope(custom_scope or TicketScope.ALL)


def unknown_permissions(names: list[str]) -> list[str]:
    known = {p.value for p in Permission}
    return sorted({name for name in names if name not in known})


def all_permission_names() -> list[str]:
    return sorted(p.value for p in Permission)


# Appointing someone to compliance is not exercising its rights: a holder of members.manage may
# do it although it holds none of them (the separation of duties in API.md's role table).
APPOINTABLE_BY_MEMBER_MANAGERS = "compliance"


def beyond_ceiling(
    held: frozenset[Permission], granted: frozenset[Permission] | set[Permission]
) -> list[str]:
    """The permissions in ``granted`` that a caller holding ``held`` may not grant, sorted."""
    return sorted(p.value for p in set(granted) - held - MARKS)


def beyond_appointment_ceiling(
    held: frozenset[Permission], role: str, granted: frozenset[Permission]
) -> list[str]:
    """What a caller holding ``held`` lacks to appoint someone to (or move them from) ``role``,
    whose permissions are ``granted``; empty when it may."""
    if role == APPOINTABLE_BY_MEMBER_MANAGERS and Permission.MEMBERS_MANAGE in held:
        return []
    return beyond_ceiling(held, granted)
