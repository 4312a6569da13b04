"""HTTP for /auth: translate requests to the sign-in service."""

from fastapi import APIRouter, Request, Response, status

from helpdesk.pipeline import AnyCaller, ClaimsDep, RuntimeDep, public
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

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", responses={401: {}, 403: {}, 422: {}, 429: {}})
@public
def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> TokenOut:
    pair = service.login(
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


@router.post("/refresh", responses={401: {}})
@public
def refresh(body: RefreshIn, runtime: RuntimeDep) -> TokenOut:
    pair = service.refresh(runtime.sessions, runtime.settings, body.refresh_token)
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}})
def logout(body: RefreshIn, claims: ClaimsDep, runtime: RuntimeDep) -> Response:
    service.logout(runtime.sessions, body.refresh_token, claims.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses={401: {}, 403: {}})
def me(scope: AnyCaller) -> MeOut:
    caller = scope.caller
    tenant = caller.tenant
    return MeOut(
        user=UserOut(id=caller.user_id, email=caller.email, name=caller.name),
        tenant=TenantOut(id=tenant.id, slug=tenant.slug, name=tenant.name) if tenant else None,
        role=caller.role,
        permissions=sorted(p.value for p in caller.permissions),
    )


@router.post("/invitations/accept", responses={401: {}, 422: {}})
@public
def accept_invitation(body: InvitationAccept, runtime: RuntimeDep) -> InvitationAccepted:
    email = service.accept_invitation(runtime.sessions, body.token, body.password)
    return InvitationAccepted(email=email)
