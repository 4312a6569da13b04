"""The console's HTTP plumbing: the session cookie, CSRF, the scope every page runs in, page
rendering with its security headers, and errors rendered as pages.

A console request runs through the API's own ``tenant_scope`` (workspace entry, membership and
session check, denied-attempt audit, the one-audit-event rule for unsafe requests) and the
API's own ``require``: the cookie only stands in for the bearer token.
"""

import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from auth.permissions import Permission
from auth.tokens import AccessClaims
from helpdesk.console import service
from helpdesk.console.service import ConsoleGrant
from helpdesk.core.errors import AppError, Forbidden, InvalidInput, RetryLater
from helpdesk.pipeline import (
    PLATFORM_KEY,
    SAFE_METHODS,
    RequestPathDep,
    Scope,
    admitted_transaction,
    require,
    tenant_scope,
)

M = TypeVar("M", bound=BaseModel)
PREFIX = "/app"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
COOKIE = "helpdesk_console"
CSRF_FIELD = "csrf_token"
# No inline script or style anywhere: everything the pages use is served from /app/static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages hold personal data: a shared machine's back button must not show them after sign-out.
    "Cache-Control": "no-store",
}


class SignInRequired(AppError):
    """No live console session: pages send the browser to the sign-in page."""

    status_code = 401
    code = "sign_in_required"


class CsrfFailed(Forbidden):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="csrf_failed")


def cookie_options(secure: bool) -> dict[str, Any]:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Secure outside development, scoped to the console's paths."""
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": PREFIX}


def secure_cookies(request: Request) -> bool:
    runtime = request.app.state.runtime
    return bool(runtime.settings.env != "development")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc == request.headers.get("host")


async def check_origin(request: Request) -> None:
    """An unsafe request must come from a page of this console (a browser always sends Origin
    on a POST); sign-in has no session yet, so this is all it can check."""
    if request.method not in SAFE_METHODS and not _same_origin(request):
        raise CsrfFailed("Refused: the form was not sent from this console (Origin mismatch).")


async def console_grant(request: Request, path: RequestPathDep) -> ConsoleGrant:
    """The live console session the cookie names, checked for CSRF on unsafe requests."""
    cookie = request.cookies.get(COOKIE)
    grant = None
    if cookie:
        async with admitted_transaction(path, PLATFORM_KEY) as session:
            grant = await session.run_sync(service.resume, cookie, datetime.now(UTC))
    if grant is None:
        raise SignInRequired("Your session has ended: sign in again.")
    if request.method not in SAFE_METHODS:
        await check_origin(request)
        form = await request.form()
        sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not _constant_time_equal(sent, grant.csrf_token):
            raise CsrfFailed("Refused: the form's security token is missing or stale.")
    return grant


def _constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


GrantDep = Annotated[ConsoleGrant, Depends(console_grant)]


async def console_scope(
    request: Request, path: RequestPathDep, grant: GrantDep
) -> AsyncIterator[Scope]:
    """The API's tenant scope, entered with the session the cookie maps to."""
    claims = AccessClaims(
        user_id=grant.user_id,
        tenant_id=grant.tenant_id,
        token_id="console",
        expires_at=grant.expires_at,
        session_id=grant.session_id,
    )
    async with contextlib.asynccontextmanager(tenant_scope)(request, path, claims) as scope:
        request.state.console_grant = grant
        yield scope


# A page open to any member of the workspace (the home page, sign-out).
console_scope.access = "authenticated"  # type: ignore[attr-defined]
Member = Annotated[Scope, Depends(console_scope, scope="function")]


def allow(permission: Permission) -> Callable[..., Awaitable[Scope]]:
    """The API's ``require(permission)``, with the caller from the console session."""
    return require(permission, within=console_scope)


def page(
    request: Request,
    template: str,
    scope: Scope | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    grant: ConsoleGrant | None = getattr(request.state, "console_grant", None)
    caller = scope.caller if scope is not None else None
    response = templates.TemplateResponse(
        request,
        template,
        {
            "caller": caller,
            "can": (lambda p: caller is not None and Permission(p) in caller.permissions),
            "csrf_token": grant.csrf_token if grant else "",
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a form's POST with a GET (post/redirect/get).
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def _error_page(request: Request, status_code: int, detail: str, code: str) -> Response:
    if status_code == 401:
        return redirect(f"{PREFIX}/signin")
    response = page(
        request, "error.html", status_code=status_code, detail=detail, code=code, title="Refused"
    )
    return response


def install(app: FastAPI, routers: list[Any]) -> None:
    """Mount the console on ``app``: its routes (out of the OpenAPI document), its static
    files, and error pages in place of the API's JSON errors for paths under /app."""
    for router in routers:
        app.include_router(router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    handlers: Mapping[Any, Callable[..., Any]] = dict(app.exception_handlers)
    api_app_error = handlers[AppError]
    api_validation_error = handlers[RequestValidationError]
    api_http_error = handlers[StarletteHTTPException]

    async def app_error(request: Request, exc: AppError) -> Response:
        if not request.url.path.startswith(PREFIX + "/"):
            return await api_app_error(request, exc)  # type: ignore[no-any-return]
        response = _error_page(request, exc.status_code, exc.detail, exc.code)
        if isinstance(exc, RetryLater):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith(PREFIX + "/"):
            return await api_validation_error(request, exc)  # type: ignore[no-any-return]
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        return _error_page(request, 422, f"Some fields are not valid: {fields}.", InvalidInput.code)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(PREFIX + "/") or exc.status_code != 404:
            return await api_http_error(request, exc)  # type: ignore[no-any-return]
        return _error_page(request, 404, "There is no such page.", "not_found")

    app.add_exception_handler(AppError, app_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]


def parse(model: type[M], **data: Any) -> M:
    """A form's fields through the API's own request model, so the console accepts exactly
    what the API accepts; a refusal is a page naming the fields and why, as a 422."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
            if e["loc"]
        )
        raise InvalidInput(f"Some fields are not valid: {reasons or 'the form'}.") from None
