"""Custom role rules: names never shadow a built-in, permissions come from the registry,
built-in roles are read-only, a role still held cannot be deleted, and a caller defines only
roles within its own permissions (its privilege ceiling) and never edits the role it holds."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.caller import Caller
from auth.models import CustomRole, Member
from auth.permissions import BUILTIN_ROLES, BUILTIN_TICKET_SCOPES, Permission
from auth.roles import ROLE_NAME, all_permission_names, beyond_ceiling, unknown_permissions
from helpdesk.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from helpdesk.roles.schemas import RoleIn, RoleOut, RolePatch


def _check_permissions(names: list[str]) -> list[str]:
    unknown = unknown_permissions(names)
    if unknown:
        raise InvalidInput(
            f"Unknown permission(s) {', '.join(unknown)}; valid ones are: "
            f"{', '.join(all_permission_names())}.",
            code="unknown_permission",
            field="permissions",
        )
    return sorted(set(names))


def _check_ceiling(caller: Caller, name: str, permissions: list[str]) -> None:
    missing = beyond_ceiling(caller.permissions, {Permission(p) for p in permissions})
    if missing:
        raise Forbidden(
            f"You lack the permission(s) {', '.join(missing)} that the role {name!r} would "
            "grant: you may grant only permissions you hold.",
            permission=Permission.ROLES_MANAGE.value,
        )


def _out(role: CustomRole) -> RoleOut:
    return RoleOut(
        name=role.name,
        builtin=False,
        permissions=sorted(role.permissions),
        ticket_scope=role.ticket_scope,
    )


def list_roles(session: Session, caller: Caller, *, after: str | None, limit: int) -> list[RoleOut]:
    """Up to ``limit`` roles after the one named ``after``: the built-in roles first, in API.md's
    order, then the custom ones by name (a custom name never repeats a built-in one)."""
    names = list(BUILTIN_ROLES)
    if after is None:
        builtin_names = names
    elif after in BUILTIN_ROLES:
        builtin_names = names[names.index(after) + 1 :]
    else:
        builtin_names = []
    builtin = [
        RoleOut(
            name=name,
            builtin=True,
            permissions=sorted(p.value for p in BUILTIN_ROLES[name]),
            ticket_scope=BUILTIN_TICKET_SCOPES[name].value,
        )
        for name in builtin_names[:limit]
    ]
    query = (
        select(CustomRole)
        .where(CustomRole.tenant_id == caller.workspace.id)
        .order_by(CustomRole.name)
        .limit(limit - len(builtin))
    )
    if after is not None and after not in BUILTIN_ROLES:
        query = query.where(CustomRole.name > after)
    return builtin + [_out(role) for role in session.scalars(query)]


def _custom(session: Session, caller: Caller, name: str) -> CustomRole:
    if name in BUILTIN_ROLES:
        raise Forbidden(
            f"You lack permission to change the built-in role {name!r}.",
            permission=Permission.ROLES_MANAGE.value,
        )
    # A name no role could have is not looked up (a NUL in it would fail in the database).
    role = (
        session.get(CustomRole, (caller.workspace.id, name)) if ROLE_NAME.fullmatch(name) else None
    )
    if role is None:
        raise NotFound(f"No role {name!r} in this workspace.", code="role_not_found")
    return role


def role_exists(session: Session, caller: Caller, name: str) -> bool:
    return name in BUILTIN_ROLES or session.get(CustomRole, (caller.workspace.id, name)) is not None


def create_role(session: Session, caller: Caller, data: RoleIn) -> RoleOut:
    if not ROLE_NAME.fullmatch(data.name):
        raise InvalidInput(
            "A role name is 2 to 64 characters: a lowercase letter, then lowercase letters, "
            "digits, '-' or '_'.",
            code="invalid_role_name",
            field="name",
        )
    permissions = _check_permissions(data.permissions)
    _check_ceiling(caller, data.name, permissions)
    if role_exists(session, caller, data.name):
        raise Conflict(f"A role named {data.name!r} exists already.", code="role_exists")
    role = CustomRole(
        tenant_id=caller.workspace.id,
        name=data.name,
        permissions=permissions,
        ticket_scope=data.ticket_scope,
    )
    session.add(role)
    session.flush()
    return _out(role)


def update_role(
    session: Session, caller: Caller, name: str, patch: RolePatch
) -> tuple[RoleOut, dict[str, object]]:
    role = _custom(session, caller, name)
    if role.name == caller.role:
        raise Forbidden(
            f"You lack permission to edit the role {name!r}: it is the one you hold, and "
            "nobody changes their own role.",
            permission=Permission.ROLES_MANAGE.value,
        )
    after = role.permissions if patch.permissions is None else _check_permissions(patch.permissions)
    # The role as it would be: a caller may not touch a role that grants more than it holds,
    # even to change only its ticket scope.
    _check_ceiling(caller, name, [p for p in after if p in set(all_permission_names())])
    changes: dict[str, object] = {}
    if patch.permissions is not None:
        permissions = _check_permissions(patch.permissions)
        if permissions != sorted(role.permissions):
            changes["permissions"] = {"before": sorted(role.permissions), "after": permissions}
            role.permissions = permissions
    if patch.ticket_scope is not None and patch.ticket_scope != role.ticket_scope:
        changes["ticket_scope"] = {"before": role.ticket_scope, "after": patch.ticket_scope}
        role.ticket_scope = patch.ticket_scope
    session.flush()
    return _out(role), changes


def delete_role(session: Session, caller: Caller, name: str) -> None:
    role = _custom(session, caller, name)
    holders = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.tenant_id == role.tenant_id, Member.role == name)
    )
    if holders:
        members = "member holds" if holders == 1 else "members hold"
        raise Conflict(
            f"The role {name!r} cannot be deleted: {holders} {members} it. Reassign them first.",
            code="role_in_use",
        )
    session.delete(role)
    session.flush()
