"""The request pipeline's dependencies: token → tenant → transaction scope → permission.

Inside a workspace the first statement of the request's transaction reads the tenant row and,
in the same statement, sets ``search_path`` and ``role`` for this transaction only. The caller's
membership is then read under the tenant's own role (row-level security shows it only its own
workspace's rows), so a removal or demotion counts on the very next request.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy import text
from sqlalchemy.orm import Session

from audit.platform import record_platform_event
from audit.trail import actor_of, record_event
from auth.caller import Caller
from auth.permissions import Permission, TicketScope
from auth.roles import resolve_role
from auth.tokens import AccessClaims, decode_access_token
from helpdesk.core.db import tenant_transaction, transaction
from helpdesk.core.errors import Forbidden, Unauthorized
from helpdesk.core.input import MAX_ROW_ID
from helpdesk.core.request_context import route_template
from helpdesk.runtime import Runtime
from tenants.context import TenantRef
from tenants.registry import unavailable

_ENTER_TENANT = text(
    "SELECT id, slug, name, schema_name, role_name, status,"
    " set_config('search_path', quote_ident(schema_name) || ', public', true) AS _path,"
    " set_config('role', role_name, true) AS _role"
    " FROM public.tenants WHERE id = :tenant_id"
)
_MEMBER = text(
    "SELECT m.role, u.email, u.name, u.disabled, cr.permissions, cr.ticket_scope"
    " FROM public.memberships m JOIN public.users u ON u.id = m.user_id"
    " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
    " WHERE m.user_id = :user_id AND m.tenant_id = :tenant_id"
)
_OPERATOR = text("SELECT email, name, disabled, is_operator FROM public.users WHERE id = :user_id")


@dataclass(slots=True)
class Scope:
    """A caller and the open transaction their request runs in."""

    session: Session
    caller: Caller
    audited: bool = False

    def audit(
        self,
        action: str,
        target_type: str | None = None,
        target_id: object = None,
        *,
        changes: dict[str, Any] | None = None,
        personal_data: bool = False,
    ) -> None:
        """Record this request's one audit event, in the request's own transaction."""
        if self.audited:
            raise RuntimeError(f"a request records one audit event; {action} would be a second")
        record_event(
            self.session,
            actor=actor_of(self.caller),
            action=action,
            target_type=target_type,
            target_id=target_id,
            changes=changes,
            personal_data=personal_data,
        )
        self.audited = True


# Dependencies that do no I/O are ``async def``: FastAPI runs each plain ``def`` dependency in
# the thread pool, and those hops cost more than the work itself.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# An id in a path names a row of a workspace's bigint-keyed table: past that range it can name
# nothing, and is refused as input rather than sent to PostgreSQL to overflow there.
RowId = Annotated[int, Path(le=MAX_ROW_ID)]


async def access_claims(request: Request, runtime: RuntimeDep) -> AccessClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("This endpoint needs a bearer token: sign in first.")
    return decode_access_token(runtime.settings, token.strip())


ClaimsDep = Annotated[AccessClaims, Depends(access_claims)]


def _enter_tenant(session: Session, claims: AccessClaims, tenant_id: uuid.UUID) -> Caller:
    row = session.execute(_ENTER_TENANT, {"tenant_id": tenant_id}).one_or_none()
    if row is None:
        raise Unauthorized("The workspace this token was issued for no longer exists.")
    if row.status != "active":
        raise unavailable(row.slug, row.status)
    member = session.execute(
        _MEMBER, {"user_id": claims.user_id, "tenant_id": tenant_id}
    ).one_or_none()
    if member is None or member.disabled:
        raise Unauthorized("This token is revoked: you are no longer a member of this workspace.")
    tenant = TenantRef(
        id=row.id,
        slug=row.slug,
        name=row.name,
        schema_name=row.schema_name,
        role_name=row.role_name,
        status=row.status,
    )
    permissions, ticket_scope = resolve_role(member.role, member.permissions, member.ticket_scope)
    return Caller(
        user_id=claims.user_id,
        email=member.email,
        name=member.name,
        role=member.role,
        permissions=permissions,
        ticket_scope=ticket_scope,
        tenant=tenant,
    )


def _enter_platform(session: Session, claims: AccessClaims) -> Caller:
    row = session.execute(_OPERATOR, {"user_id": claims.user_id}).one_or_none()
    if row is None or row.disabled or not row.is_operator:
        raise Unauthorized("This token is revoked: its user is no longer a platform operator.")
    return Caller(
        user_id=claims.user_id,
        email=row.email,
        name=row.name,
        role="operator",
        permissions=frozenset(),
        ticket_scope=TicketScope.ALL,
        tenant=None,
    )


def any_scope(runtime: RuntimeDep, claims: ClaimsDep) -> Iterator[Scope]:
    """A signed-in caller, workspace member or platform operator."""
    with transaction(runtime.sessions) as session:
        if claims.tenant_id is None:
            caller = _enter_platform(session, claims)
        else:
            caller = _enter_tenant(session, claims, claims.tenant_id)
        yield Scope(session, caller)


def tenant_scope(request: Request, runtime: RuntimeDep, claims: ClaimsDep) -> Iterator[Scope]:
    if claims.tenant_id is None:
        refusal = Forbidden(
            "You lack permission here: this endpoint works inside a workspace, and a platform "
            "operator's token names none."
        )
        _record_platform_denied(runtime, claims, request, refusal)
        raise refusal
    caller: Caller | None = None
    try:
        with transaction(runtime.sessions) as session:
            caller = _enter_tenant(session, claims, claims.tenant_id)
            scope = Scope(session, caller)
            yield scope
            if request.method not in SAFE_METHODS and not scope.audited:
                raise RuntimeError(f"{request.method} {request.url.path} changed data unaudited")
    except Forbidden as refusal:
        if caller is not None and caller.tenant is not None:
            _record_denied(runtime, caller, request, refusal)
        else:
            # Refused before the workspace was entered (it is suspended or being deleted).
            _record_platform_denied(runtime, claims, request, refusal)
        raise


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _record_denied(runtime: Runtime, caller: Caller, request: Request, refusal: Forbidden) -> None:
    """A refusal rolls the request back; record it in a transaction of its own."""
    tenant = caller.workspace
    with tenant_transaction(runtime.sessions, tenant.schema_name, tenant.role_name) as session:
        record_event(
            session,
            actor=actor_of(caller),
            action=refusal.permission or "access.denied",
            outcome="denied",
            # The concrete path can hold personal data (an email in /gdpr/subjects/...): it is
            # kept as a personal field, erasable; the route template is what stays in the chain.
            changes={
                "method": request.method,
                "route": route_template(request.scope),
                # As it was sent: a decoded %00 is a NUL, which JSONB cannot hold.
                "path": request.url.path.replace("\x00", "%00"),
                "reason": refusal.detail,
            },
        )


def _record_platform_denied(
    runtime: Runtime, claims: AccessClaims, request: Request, refusal: Forbidden
) -> None:
    """A refusal outside any workspace's scope goes on the platform trail, in its own
    transaction, with the route template rather than the path (which can name a person)."""
    with transaction(runtime.sessions) as session:
        record_platform_event(
            session,
            action=refusal.permission or "access.denied",
            outcome="denied",
            actor_id=claims.user_id,
            tenant_id=claims.tenant_id,
            details={
                "method": request.method,
                "route": route_template(request.scope),
                "reason": refusal.detail,
            },
        )


def operator_scope(request: Request, runtime: RuntimeDep, claims: ClaimsDep) -> Iterator[Scope]:
    if claims.tenant_id is not None:
        refusal = Forbidden(
            "You lack permission here: only a platform operator may manage workspaces."
        )
        _record_platform_denied(runtime, claims, request, refusal)
        raise refusal
    with transaction(runtime.sessions) as session:
        yield Scope(session, _enter_platform(session, claims))


# A route that needs a signed-in caller but no permission declares so by depending on one of
# these directly; the route walk test reads the mark (``require`` and ``public`` carry theirs).
# Only a route's own dependencies count: tenant_scope also reads the claims, yet a tenant route
# must still name a permission.
access_claims.access = "authenticated"  # type: ignore[attr-defined]
any_scope.access = "authenticated"  # type: ignore[attr-defined]
operator_scope.access = "operator"  # type: ignore[attr-defined]

# scope="function": the transaction commits before the response is sent, so a client never sees
# a success for a change that failed to commit.
AnyCaller = Annotated[Scope, Depends(any_scope, scope="function")]
Operator = Annotated[Scope, Depends(operator_scope, scope="function")]
TenantCaller = Annotated[Scope, Depends(tenant_scope, scope="function")]


def require(permission: Permission) -> Callable[..., Awaitable[Scope]]:
    """A dependency that admits members whose role holds ``permission``."""

    async def dependency(scope: TenantCaller) -> Scope:
        if permission not in scope.caller.permissions:
            raise Forbidden(
                f"You lack the permission {permission.value!r} that this action needs.",
                permission=permission.value,
            )
        return scope

    dependency.required_permission = permission  # type: ignore[attr-defined]
    return dependency


def public(func: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a route as open to anonymous callers (the route walk test reads this)."""
    func.public_route = True  # type: ignore[attr-defined]
    return func
