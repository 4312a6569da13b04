"""schemathesis over the whole OpenAPI document, against a served app: every operation, fed
generated requests (valid and invalid) with a signed-in caller's token, answers no 5xx, only
statuses it documents, with the documented content type and a body its schema accepts.

The document is read from the app itself at collection time, so each operation is a test item of
its own and xdist spreads them over its workers. Each item gets a fresh workspace holding one row
of every kind, so a generated path id half the time names a real row (reaching the update and
serialisation code, not only the 404) and no item depends on what another one did: deleting the
workspace, erasing a subject or running retention wreck only the item's own workspace.
"""

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auth.permissions import BUILTIN_ROLES
from helpdesk.app import API_PREFIX, create_app
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace
from tests.support.live_server import LiveServer, live_server
from tests.support.routes import api_routes, declaration

pytestmark = pytest.mark.e2e

# Generated requests per operation, valid and invalid; derandomized, so the same ones every run.
MAX_EXAMPLES = 40

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


_NOWHERE = "postgresql+psycopg://nobody@/nowhere"
# The app whose document is fuzzed, built at collection time. It needs no database: the engine
# connects lazily, and this app serves nothing (each test serves an app of its own).
_APP = create_app(Runtime.connect(Settings(env="development", database_url=_NOWHERE), _NOWHERE))
DOCUMENT = _APP.openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@dataclass(frozen=True)
class Target:
    """One item's served app, workspace, callers and rows."""

    base_url: str
    headers: dict[str, dict[str, str]]  # caller kind -> Authorization header
    rows: dict[str, str]  # path parameter name -> a real value in this workspace


@pytest.fixture(scope="module")
def served(service_runtime: Runtime) -> Iterator[LiveServer]:
    # An app of its own: the shared `app` fixture's lifespan belongs to the TestClient tests.
    with live_server(create_app(service_runtime)) as server:
        yield server


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _seed(http: httpx.Client, ws: Workspace, admin: dict[str, str]) -> dict[str, str]:
    """One row of every kind a path names, made through the API as an admin would."""
    customer = _created(
        http.post(
            "/api/v1/customers",
            json={"email": "seed.customer@example.com", "name": "Seed Customer"},
            headers=admin,
        )
    )
    ticket = _created(
        http.post(
            "/api/v1/tickets",
            json={"title": "Seed ticket", "customer_email": customer["email"]},
            headers=admin,
        )
    )
    _created(
        http.post(f"/api/v1/tickets/{ticket['id']}/comments", json={"body": "Seed"}, headers=admin)
    )
    member = _created(
        http.post(
            "/api/v1/members",
            json={"email": f"agent.{ws.slug}@example.com", "name": "Seed Agent", "role": "agent"},
            headers=admin,
        )
    )
    role = _created(
        http.post(
            "/api/v1/roles",
            json={"name": "seed_role", "permissions": ["tickets.read"]},
            headers=admin,
        )
    )
    webhook = _created(
        http.post(
            "/api/v1/webhooks",
            json={
                "url": "http://127.0.0.1:9/hook",
                "events": ["ticket.created"],
                "secret": "seed-secret",
            },
            headers=admin,
        )
    )
    return {
        "ticket_id": str(ticket["id"]),
        "customer_id": str(customer["id"]),
        "user_id": str(member["user_id"]),
        "name": str(role["name"]),
        "webhook_id": str(webhook["id"]),
        "email": str(customer["email"]),
        "slug": ws.slug,
    }


@pytest.fixture
def target(served: LiveServer, factory: Factory) -> Target:
    ws = factory.workspace()
    admin = factory.headers(ws.admin, ws)
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        rows = _seed(http, ws, admin)
    headers = {
        "admin": admin,
        "compliance": factory.headers(factory.member(ws, "compliance"), ws),
        "operator": factory.headers(factory.operator(), None),
    }
    return Target(served.base_url, headers, rows)


def _caller(method: str, path: str) -> str:
    """Who calls an operation: an operator for the platform's routes; the admin wherever the
    admin role holds the permission (or none is needed); otherwise the compliance officer,
    who alone holds gdpr.* and retention.manage/run, so those routes run past their 403."""
    if not path.startswith(API_PREFIX + "/"):
        return "admin"
    route = api_routes(_APP)[(method, path.removeprefix(API_PREFIX))]
    declared = declaration(route)
    if "operator" in declared.access:
        return "operator"
    if declared.permissions <= BUILTIN_ROLES["admin"]:
        return "admin"
    return "compliance"


def _point_at_real_rows(case: schemathesis.Case, rows: dict[str, str]) -> None:
    """Half the generated path values (chosen by a hash of the value, so the same ones every
    run) are replaced by a row that exists, so the operation does its work and answers it."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in rows and zlib.crc32(repr(value).encode()) % 2 == 0:
            case.path_parameters[name] = rows[name]


def _operations() -> dict[str, APIOperation]:
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        found[operation.label] = operation
    return found


OPERATIONS = _operations()


# Not schemathesis' own `@schema.parametrize()`: under pytest 9.2 every item it makes has the
# same node id (pytest now builds the id from `originalname`, which schemathesis sets to the
# test's name), so xdist would run one operation and drop the rest.
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_as_its_schema_says(label: str, target: Target) -> None:
    operation = OPERATIONS[label]
    headers = target.headers[_caller(operation.method.upper(), operation.path)]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        _point_at_real_rows(case, target.rows)
        case.call_and_validate(base_url=target.base_url, headers=headers, checks=CHECKS, timeout=30)

    answers_as_documented()


def test_every_operation_of_the_document_is_fuzzed_by_a_caller_who_may_call_it() -> None:
    """No operation is left out, and each has a caller whose role reaches past the 403."""
    documented = {
        f"{method.upper()} {path}"
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
    }
    assert set(OPERATIONS) == documented
    callers = {label: _caller(op.method.upper(), op.path) for label, op in OPERATIONS.items()}
    assert callers[f"POST {API_PREFIX}/platform/tenants"] == "operator"
    assert callers[f"POST {API_PREFIX}/gdpr/subjects/{{email}}/erase"] == "compliance"
    assert callers[f"POST {API_PREFIX}/retention/run"] == "compliance"
    assert callers[f"PUT {API_PREFIX}/settings"] == "admin"
