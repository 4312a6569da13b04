"""Console sign-in, sign-out and the home page that sends each member where their role works."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission
from helpdesk.console import service
from helpdesk.console.web import (
    COOKIE,
    PREFIX,
    Member,
    check_origin,
    cookie_options,
    page,
    redirect,
    secure_cookies,
)
from helpdesk.core.errors import AppError, RateLimited
from helpdesk.pipeline import (
    PLATFORM_KEY,
    AppRoute,
    RequestPathDep,
    RuntimeDep,
    admitted_transaction,
    public,
)

router = APIRouter(route_class=AppRoute)


@router.get("/signin")
@public
async def signin_form(request: Request) -> Response:
    return page(request, "signin.html", title="Sign in")


@router.post("/signin", dependencies=[Depends(check_origin)])
@public
async def signin(
    request: Request,
    *,
    runtime: RuntimeDep,
    path: RequestPathDep,
    workspace: Annotated[str, Form(max_length=63)],
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        # The API's sign-in (argon2, the throttle, the platform trail) on the credentials
        # executor, never on the event loop.
        cookie = await path.off_loop(
            service.sign_in,
            runtime.sessions,
            runtime.settings,
            email=email.strip(),
            password=password,
            tenant_slug=workspace.strip(),
            address=request.client.host if request.client else "unknown",
        )
    except AppError as refusal:
        form = page(
            request,
            "signin.html",
            status_code=refusal.status_code,
            title="Sign in",
            error=refusal.detail,
            workspace=workspace,
            email=email,
        )
        if isinstance(refusal, RateLimited):
            form.headers["Retry-After"] = str(refusal.retry_after)
        return form
    response = redirect(f"{PREFIX}/")
    response.set_cookie(COOKIE, cookie, **cookie_options(secure_cookies(request)))
    return response


@router.post("/signout")
async def signout(request: Request, scope: Member, path: RequestPathDep) -> Response:
    # The request already passed the session and CSRF checks; the sign-out itself is on the
    # workspace's trail as the request's one event.
    await scope.audit("auth.logout", "member", scope.caller.user_id)
    cookie = request.cookies.get(COOKIE, "")
    async with admitted_transaction(path, PLATFORM_KEY) as session:
        await session.run_sync(service.sign_out, cookie)
    response = redirect(f"{PREFIX}/signin")
    response.delete_cookie(COOKIE, **cookie_options(secure_cookies(request)))
    return response


# The first page each kind of member works from, in order of preference.
_HOMES = (
    (Permission.TICKETS_UPDATE, "/tickets"),
    (Permission.AUDIT_READ, "/audit"),
    (Permission.MEMBERS_MANAGE, "/members"),
    (Permission.TICKETS_READ, "/tickets"),
)


@router.get("/")
async def home(request: Request, scope: Member) -> Response:
    caller = scope.caller
    if caller.role == "customer":
        return redirect(f"{PREFIX}/portal")
    for permission, target in _HOMES:
        if permission in caller.permissions:
            return redirect(PREFIX + target)
    return page(request, "home.html", scope, title="Home")
