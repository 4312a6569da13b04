"""What each API route declares about who may call it, read from the app's dependency tree.

A route declares its access in one of three ways: ``@public`` on the endpoint, a ``require(...)``
dependency (a callable carrying ``required_permission``, found anywhere in the tree), or a direct
dependency on a scope marked with ``access`` in ``helpdesk.pipeline`` (``"authenticated"``,
``"operator"``). Access marks count only where the route itself names them: ``tenant_scope``
reads the token too, and must not make a permission-less tenant route look declared.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from helpdesk.app import API_PREFIX
from helpdesk.pipeline import tenant_scope

RouteKey = tuple[str, str]  # (method, path template below API_PREFIX), e.g. ("GET", "/tickets")

# The attributes helpdesk.pipeline sets: on require()'s dependency, on marked scopes, on @public.
PERMISSION_MARK = "required_permission"
ACCESS_MARK = "access"
PUBLIC_MARK = "public_route"


@dataclass(frozen=True)
class Declaration:
    """Everything a route says about its callers."""

    public: bool
    permissions: frozenset[str]  # every require(...) in the tree
    access: frozenset[str]  # marks on the route's own dependencies
    tenant_scoped: bool  # reaches tenant_scope, so it runs inside a workspace

    @property
    def kinds(self) -> list[str]:
        """The declarations present: exactly one is a well-declared route."""
        found = ["public"] if self.public else []
        found += [f"permission {p}" for p in sorted(self.permissions)]
        found += [f"access {a}" for a in sorted(self.access)]
        return found


def walk(dependant: Dependant) -> Iterator[Dependant]:
    """The dependant and every sub-dependency, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from walk(sub)


def declaration(route: RouteContext) -> Declaration:
    """What ``route`` declares, read from its effective dependant (router-level dependencies
    included)."""
    dependant: Dependant = route.dependant
    tree = list(walk(dependant))
    permissions = {
        str(getattr(d.call, PERMISSION_MARK)) for d in tree if hasattr(d.call, PERMISSION_MARK)
    }
    own = dependant.dependencies
    access = {str(getattr(d.call, ACCESS_MARK)) for d in own if hasattr(d.call, ACCESS_MARK)}
    return Declaration(
        public=bool(getattr(route.endpoint, PUBLIC_MARK, False)),
        permissions=frozenset(permissions),
        access=frozenset(access),
        tenant_scoped=any(d.call is tenant_scope for d in tree),
    )


def api_routes(app: FastAPI) -> dict[RouteKey, RouteContext]:
    """Every (method, path) the app serves under /api/v1, path relative to the prefix.

    Since FastAPI 0.137 ``app.routes`` holds one lazy wrapper per included router, so a plain
    loop over it finds no API route at all; ``iter_route_contexts`` flattens the tree.
    """
    found: dict[RouteKey, RouteContext] = {}
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if not isinstance(route.original_route, APIRoute) or not path.startswith(API_PREFIX + "/"):
            continue
        for method in sorted(route.methods or ()):
            found[(method, path.removeprefix(API_PREFIX))] = route
    return found


def problems(app: FastAPI) -> list[str]:
    """Why each badly declared route is bad; empty when every route declares its access once."""
    found: list[str] = []
    for (method, path), route in sorted(api_routes(app).items()):
        declared = declaration(route)
        name = f"{method} {path}"
        if not declared.kinds:
            found.append(f"{name}: declares no permission, access mark or @public")
        elif len(declared.kinds) > 1:
            found.append(f"{name}: declares more than once: {', '.join(declared.kinds)}")
        if declared.tenant_scoped and not declared.permissions:
            found.append(f"{name}: runs inside a workspace but names no permission")
    return found
