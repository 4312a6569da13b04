"""HTTP for /auth: translate requests to the sign-in service."""

from fastapi import APIRouter, Request, Response, status

from helpdesk.errors import error_responses
from helpdesk.pipeline import AnyCaller, AppRoute, ClaimsDep, RequestPathDep, RuntimeDep, public
from helpdesk.signin import service
from helpdesk.signin.schemas import (
    InvitationAccept,
    InvitationAccepted,
    LoginIn,
    MeOut,
    RefreshIn,
    TenantOut,
    TokenOut,
    UserOut,
)

router = APIRouter(prefix="/auth", tags=["auth"], route_class=AppRoute)


@router.post(
    "/login",
    responses=error_responses(
        400,
        401,
        403,
        413,
        422,
        429,
        described={
            401: 'The email, password or workspace is wrong (the detail says "incorrect").',
            422: "Invalid input, or no workspace named by someone who is not an operator.",
        },
    ),
)
@public
async def login(
    body: LoginIn, request: Request, runtime: RuntimeDep, path: RequestPathDep
) -> TokenOut:
    # Sign-in is argon2 (CPU-bound) around a few short transactions: the whole of it runs on
    # the bounded credentials executor, never on the event loop.
    pair = await path.off_loop(
        service.login,
        runtime.sessions,
        runtime.settings,
        email=body.email,
        password=body.password,
        tenant_slug=body.tenant,
        address=request.client.host if request.client else "unknown",
    )
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.post(
    "/refresh",
    responses=error_responses(
        400,
        401,
        403,
        413,
        422,
        described={
            401: "The refresh token is invalid, expired or revoked; a spent one also revokes "
            "its whole family."
        },
    ),
)
@public
async def refresh(body: RefreshIn, runtime: RuntimeDep, path: RequestPathDep) -> TokenOut:
    pair = await path.off_loop(
        service.refresh, runtime.sessions, runtime.settings, body.refresh_token
    )
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 413, 422),
    response_description="The session has ended: its access token is refused from now on.",
)
async def logout(
    body: RefreshIn, claims: ClaimsDep, runtime: RuntimeDep, path: RequestPathDep
) -> Response:
    await path.off_loop(
        service.logout, runtime.sessions, body.refresh_token, claims.user_id, claims.session_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses=error_responses(401, 403))
async def me(scope: AnyCaller) -> MeOut:
    caller = scope.caller
    tenant = caller.tenant
    return MeOut(
        user=UserOut(id=caller.user_id, email=caller.email, name=caller.name),
        tenant=TenantOut(id=tenant.id, slug=tenant.slug, name=tenant.name) if tenant else None,
        role=caller.role,
        permissions=sorted(p.value for p in caller.permissions),
    )


@router.post(
    "/invitations/accept",
    responses=error_responses(
        400, 401, 413, 422, described={401: "The invitation is invalid, used or expired."}
    ),
)
@public
async def accept_invitation(
    body: InvitationAccept, runtime: RuntimeDep, path: RequestPathDep
) -> InvitationAccepted:
    email = await path.off_loop(
        service.accept_invitation, runtime.sessions, body.token, body.password
    )
    return InvitationAccepted(email=email)
