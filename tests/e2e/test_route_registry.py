"""Deny by default: every route under /api/v1 declares who may call it, exactly once.

A route declares a permission (``require(...)``), an access mark (a direct dependency on
``any_scope``/``access_claims``: any signed-in caller; ``operator_scope``: platform operators), or
``@public``. A route that declares nothing, or more than one thing, fails here before it ships.
"""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI

from auth.permissions import Permission
from helpdesk.app import API_PREFIX
from helpdesk.pipeline import (
    AnyCaller,
    ClaimsDep,
    Operator,
    Scope,
    TenantCaller,
    public,
    require,
)
from tests.support.routes import api_routes, declaration, problems

pytestmark = pytest.mark.e2e

# API.md marks exactly these *public*; every other route needs a bearer token.
DOCUMENTED_PUBLIC = {
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/invitations/accept"),
}


def test_every_api_route_declares_who_may_call_it_exactly_once(app: FastAPI) -> None:
    assert problems(app) == []


def test_the_walk_sees_every_route_the_openapi_document_lists(app: FastAPI) -> None:
    # Guards the guard: a walk that silently found no routes would pass the test above.
    documented = {
        (method.upper(), path.removeprefix(API_PREFIX))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(API_PREFIX + "/")
        for method in operations
    }
    assert len(documented) > 20
    assert set(api_routes(app)) == documented


def test_public_routes_are_exactly_the_documented_ones(app: FastAPI) -> None:
    marked = {key for key, route in api_routes(app).items() if declaration(route).public}
    assert marked == DOCUMENTED_PUBLIC


def test_a_tenant_route_always_names_a_permission(app: FastAPI) -> None:
    for (method, path), route in api_routes(app).items():
        declared = declaration(route)
        if declared.tenant_scoped:
            assert len(declared.permissions) == 1, f"{method} {path}: {declared.kinds}"


def _probe_app() -> FastAPI:
    """A tiny app with one route of each kind, good and bad, to prove the walk can fail."""
    router = APIRouter()
    reader = Annotated[Scope, Depends(require(Permission.TICKETS_READ))]
    deleter = Annotated[Scope, Depends(require(Permission.TICKETS_DELETE))]

    @router.get("/declared")
    def declared(scope: reader) -> None: ...

    @router.get("/operator")
    def operator(scope: Operator) -> None: ...

    @router.get("/me")
    def me(scope: AnyCaller) -> None: ...

    @router.post("/token-only")
    def token_only(claims: ClaimsDep) -> None: ...

    @router.post("/open")
    @public
    def open_route() -> None: ...

    @router.get("/router-level", dependencies=[Depends(require(Permission.AUDIT_READ))])
    def router_level() -> None: ...

    @router.get("/undeclared")
    def undeclared() -> None: ...

    @router.get("/tenant-without-permission")
    def tenant_without_permission(scope: TenantCaller) -> None: ...

    @router.get("/tenant-with-claims-but-no-permission")
    def tenant_with_claims(scope: TenantCaller, claims: ClaimsDep) -> None: ...

    @router.get("/two-permissions")
    def two_permissions(scope: reader, other: deleter) -> None: ...

    @router.post("/public-and-gated")
    @public
    def public_and_gated(scope: reader) -> None: ...

    gated = APIRouter()

    @gated.get("/include-level")
    def include_level() -> None: ...

    app = FastAPI()
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(
        gated, prefix=API_PREFIX, dependencies=[Depends(require(Permission.WEBHOOKS_MANAGE))]
    )
    return app


def test_the_walk_flags_each_kind_of_undeclared_route() -> None:
    assert problems(_probe_app()) == [
        "GET /tenant-with-claims-but-no-permission: runs inside a workspace but names no "
        "permission",
        "GET /tenant-without-permission: declares no permission, access mark or @public",
        "GET /tenant-without-permission: runs inside a workspace but names no permission",
        "GET /two-permissions: declares more than once: permission tickets.delete, "
        "permission tickets.read",
        "GET /undeclared: declares no permission, access mark or @public",
        "POST /public-and-gated: declares more than once: public, permission tickets.read",
    ]


def test_the_walk_reads_what_each_good_route_declares() -> None:
    kinds = {key: declaration(route).kinds for key, route in api_routes(_probe_app()).items()}
    assert kinds[("GET", "/declared")] == ["permission tickets.read"]
    assert kinds[("GET", "/router-level")] == ["permission audit.read"]
    assert kinds[("GET", "/include-level")] == ["permission webhooks.manage"]
    assert kinds[("GET", "/operator")] == ["access operator"]
    assert kinds[("GET", "/me")] == ["access authenticated"]
    assert kinds[("POST", "/token-only")] == ["access authenticated"]
    assert kinds[("POST", "/open")] == ["public"]
