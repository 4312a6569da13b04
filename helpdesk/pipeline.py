"""The request pipeline's dependencies: token → tenant → transaction scope → permission.

Everything here is ``async``: a request waits for PostgreSQL on the event loop, never in a
thread-pool slot (a sync dependency that waits for a pooled connection while holding a thread
deadlocks under a burst). Services stay plain functions over a ``Session``; a request runs them
on its ``AsyncSession`` through ``run_sync``, SQLAlchemy's greenlet bridge, so jobs, the CLI
and requests share one implementation and no request hops to a thread.

Inside a workspace the first statement of the request's transaction reads the tenant row and,
in the same statement, sets ``search_path`` and ``role`` for this transaction only. The caller's
membership is then read under the tenant's own role (row-level security shows it only its own
workspace's rows), so a removal or demotion counts on the very next request.
"""

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import psycopg
from fastapi import Depends, Path, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from audit.platform import record_platform_event
from audit.trail import actor_of, append_event, record_event
from auth.caller import Caller
from auth.permissions import Permission, TicketScope
from auth.roles import resolve_role
from auth.tokens import AccessClaims
from helpdesk.core.db import async_transaction, driver_connection, driver_sql, set_tenant_scope
from helpdesk.core.errors import Forbidden, Unauthorized
from helpdesk.core.input import MAX_ROW_ID, MIN_ROW_ID
from helpdesk.core.request_context import route_template
from helpdesk.idempotency import service as idempotency
from helpdesk.runtime import RequestPath, Runtime
from tenants.context import TenantRef
from tenants.registry import unavailable

# These run on the driver's connection (helpdesk.core.db.driver_connection): every request
# sends them, and through the session each would cost more Python than the statement itself.
_ENTER_TENANT = driver_sql(
    text(
        "SELECT id, slug, name, schema_name, role_name, status,"
        " set_config('search_path', quote_ident(schema_name) || ', public', true) AS _path,"
        " set_config('role', role_name, true) AS _role"
        " FROM public.tenants WHERE id = :tenant_id"
    )
)
# The session check rides along with the membership read: one round trip answers whether the
# caller is still a member and whether the session their token names is still open (logout,
# a spent refresh token's reuse and removal from the workspace end it). session_live is a
# SECURITY DEFINER function: the tenant's role may not read refresh_tokens itself.
_MEMBER = driver_sql(
    text(
        "SELECT m.role, m.email, m.name, cr.permissions, cr.ticket_scope,"
        " public.session_live(CAST(:session_id AS uuid), m.user_id, m.tenant_id) AS session_live"
        " FROM public.members m"
        " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
        " WHERE m.user_id = :user_id AND m.tenant_id = :tenant_id"
    )
)
_OPERATOR = driver_sql(
    text(
        "SELECT email, name, disabled, is_operator,"
        " public.session_live(CAST(:session_id AS uuid), id, NULL) AS session_live"
        " FROM public.users WHERE id = :user_id"
    )
)
_SESSION_ENDED = "This token is revoked: its session has ended (signed out, or ended for you)."


P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class Scope:
    """A caller and the open transaction their request runs in."""

    session: AsyncSession
    caller: Caller
    # The psycopg connection under ``session``, for the audit append.
    connection: psycopg.AsyncConnection[Any]
    audited: bool = False
    # The Idempotency-Key this request claimed; its result is kept before commit.
    idempotency_key: str | None = None

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a service function in this request's transaction, on the event loop."""
        return await self.session.run_sync(fn, *args, **kwargs)

    async def audit(
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
        session = self.session
        # The append bypasses the session, so its pending changes would otherwise follow it.
        if session.new or session.dirty or session.deleted:
            await session.flush()
        await append_event(
            self.connection,
            actor=actor_of(self.caller),
            action=action,
            target_type=target_type,
            target_id=target_id,
            changes=changes,
            personal_data=personal_data,
        )
        self.audited = True

    async def remember(self, status_code: int, result: object) -> None:
        """Keep this request's result under its Idempotency-Key, in its own transaction."""
        if self.idempotency_key is None:
            return
        body = None if isinstance(result, Response) else jsonable_encoder(result)
        await self.session.run_sync(
            idempotency.remember, self.caller.user_id, self.idempotency_key, status_code, body
        )


# Dependencies that do no I/O are ``async def``: FastAPI runs each plain ``def`` dependency in
# the thread pool, and those hops cost more than the work itself.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_request_path(request: Request) -> RequestPath:
    path: RequestPath = request.app.state.request_path
    return path


RequestPathDep = Annotated[RequestPath, Depends(get_request_path)]
# Admission key of requests that belong to no workspace (operators, sign-in).
PLATFORM_KEY = "platform"


@asynccontextmanager
async def admitted_transaction(path: RequestPath, key: str) -> AsyncIterator[AsyncSession]:
    """A connection within the wait bound and the workspace's share, then one transaction."""
    async with path.admission.slot(key), async_transaction(path.sessions) as session:
        yield session


# An id in a path names a row of a workspace's bigint-keyed table: past that range it can name
# nothing, and is refused as input rather than sent to PostgreSQL to overflow there.
RowId = Annotated[int, Path(ge=MIN_ROW_ID, le=MAX_ROW_ID)]


async def access_claims(request: Request, path: RequestPathDep) -> AccessClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("This endpoint needs a bearer token: sign in first.")
    # The signature is checked once per token; the session it names, on every request below.
    return path.tokens.claims(token.strip())


ClaimsDep = Annotated[AccessClaims, Depends(access_claims)]


async def _one(
    connection: psycopg.AsyncConnection[Any], statement: str, params: dict[str, Any]
) -> Any:
    cursor = connection.cursor(row_factory=namedtuple_row)
    await cursor.execute(statement, params)
    return await cursor.fetchone()


async def _enter_tenant(
    connection: psycopg.AsyncConnection[Any], claims: AccessClaims, tenant_id: uuid.UUID
) -> Caller:
    row = await _one(connection, _ENTER_TENANT, {"tenant_id": tenant_id})
    if row is None:
        raise Unauthorized("The workspace this token was issued for no longer exists.")
    if row.status != "active":
        raise unavailable(row.slug, row.status)
    member = await _one(
        connection,
        _MEMBER,
        {"user_id": claims.user_id, "tenant_id": tenant_id, "session_id": claims.session_id},
    )
    if member is None:
        raise Unauthorized("This token is revoked: you are no longer a member of this workspace.")
    if not member.session_live:
        raise Unauthorized(_SESSION_ENDED)
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


async def _enter_platform(connection: psycopg.AsyncConnection[Any], claims: AccessClaims) -> Caller:
    row = await _one(
        connection, _OPERATOR, {"user_id": claims.user_id, "session_id": claims.session_id}
    )
    # Read on every request: a disabled or demoted operator is refused on the next one.
    if row is None or row.disabled or not row.is_operator:
        raise Unauthorized("This token is revoked: its user is no longer a platform operator.")
    if not row.session_live:
        raise Unauthorized(_SESSION_ENDED)
    return Caller(
        user_id=claims.user_id,
        email=row.email,
        name=row.name,
        role="operator",
        permissions=frozenset(),
        ticket_scope=TicketScope.ALL,
        tenant=None,
    )


async def _entered(
    session: AsyncSession,
    enter: Callable[Concatenate[psycopg.AsyncConnection[Any], P], Awaitable[Caller]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Scope:
    connection = await driver_connection(session)
    return Scope(session, await enter(connection, *args, **kwargs), connection)


async def any_scope(path: RequestPathDep, claims: ClaimsDep) -> AsyncIterator[Scope]:
    """A signed-in caller, workspace member or platform operator."""
    if claims.tenant_id is None:
        async with admitted_transaction(path, PLATFORM_KEY) as session:
            yield await _entered(session, _enter_platform, claims)
        return
    path.rate_limiter.take(str(claims.tenant_id))
    async with admitted_transaction(path, str(claims.tenant_id)) as session:
        yield await _entered(session, _enter_tenant, claims, claims.tenant_id)


async def tenant_scope(
    request: Request, path: RequestPathDep, claims: ClaimsDep
) -> AsyncIterator[Scope]:
    if claims.tenant_id is None:
        refusal = Forbidden(
            "You lack permission here: this endpoint works inside a workspace, and a platform "
            "operator's token names none."
        )
        await _record_platform_denied(path, claims, request, refusal)
        raise refusal
    key = str(claims.tenant_id)
    # Refused before it costs a connection: one workspace's flood cannot reach the pool.
    path.rate_limiter.take(key)
    caller: Caller | None = None
    try:
        async with admitted_transaction(path, key) as session:
            scope = await _entered(session, _enter_tenant, claims, claims.tenant_id)
            caller = scope.caller
            scope.idempotency_key = await _claim_idempotency_key(request, scope)
            yield scope
            if request.method not in SAFE_METHODS and not scope.audited:
                raise RuntimeError(f"{request.method} {request.url.path} changed data unaudited")
    except Forbidden as refusal:
        if caller is not None and caller.tenant is not None:
            await _record_denied(path, caller, request, refusal)
        else:
            # Refused before the workspace was entered (it is suspended or being deleted).
            await _record_platform_denied(path, claims, request, refusal)
        raise


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _claim_idempotency_key(request: Request, scope: Scope) -> str | None:
    """A POST with an Idempotency-Key claims it first thing; a retry of a request that
    committed is answered with that request's result (IdempotentReplay) and does nothing."""
    key = request.headers.get(idempotency.HEADER)
    if request.method != "POST" or key is None:
        return None
    idempotency.check_key(key)
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    fingerprint = idempotency.request_hash(request.method, target, await request.body())
    await scope.run(idempotency.claim, scope.caller.user_id, key, fingerprint)
    return key


class AppRoute(APIRoute):
    """Every route of the app: a POST keeps its result for its Idempotency-Key (if the
    request claimed one) in the request's transaction, before the commit."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()):
            endpoint = _remembering(endpoint, kwargs.get("status_code") or 200)
        super().__init__(path, endpoint, **kwargs)


def _remembering(endpoint: Callable[..., Any], status_code: int) -> Callable[..., Any]:
    # Including a router builds its routes again from their endpoints: wrap once.
    if getattr(endpoint, "remembers_result", False):
        return endpoint

    # functools.wraps keeps the signature FastAPI reads the parameters and response model from.
    @functools.wraps(endpoint)
    async def remembering(**kwargs: Any) -> Any:
        result = await endpoint(**kwargs)
        for value in kwargs.values():
            if isinstance(value, Scope):
                code = result.status_code if isinstance(result, Response) else status_code
                await value.remember(code, result)
        return result

    remembering.remembers_result = True  # type: ignore[attr-defined]
    return remembering


async def _record_denied(
    path: RequestPath, caller: Caller, request: Request, refusal: Forbidden
) -> None:
    """A refusal rolls the request back; record it in a transaction of its own."""
    tenant = caller.workspace
    async with admitted_transaction(path, str(tenant.id)) as session:
        await session.run_sync(set_tenant_scope, tenant.schema_name, tenant.role_name)
        await session.run_sync(
            record_event,
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


async def _record_platform_denied(
    path: RequestPath, claims: AccessClaims, request: Request, refusal: Forbidden
) -> None:
    """A refusal outside any workspace's scope goes on the platform trail, in its own
    transaction, with the route template rather than the path (which can name a person)."""
    async with admitted_transaction(path, PLATFORM_KEY) as session:
        await session.run_sync(
            record_platform_event,
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


async def operator_scope(
    request: Request, path: RequestPathDep, claims: ClaimsDep
) -> AsyncIterator[Scope]:
    if claims.tenant_id is not None:
        refusal = Forbidden(
            "You lack permission here: only a platform operator may manage workspaces."
        )
        await _record_platform_denied(path, claims, request, refusal)
        raise refusal
    async with admitted_transaction(path, PLATFORM_KEY) as session:
        yield await _entered(session, _enter_platform, claims)


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


def require(
    permission: Permission,
    within: Callable[..., AsyncIterator[Scope]] = tenant_scope,
) -> Callable[..., Awaitable[Scope]]:
    """A dependency that admits members whose role holds ``permission``; ``within`` is the
    scope the caller comes from (the web console's cookie session instead of a bearer token),
    so the console and the API check one rule."""

    async def dependency(scope: Annotated[Scope, Depends(within, scope="function")]) -> Scope:
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
