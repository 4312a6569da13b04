"""API.md's conventions, checked across every route at once: the OpenAPI document describes
each route's error responses, and every list pages the same way."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from helpdesk.app import API_PREFIX
from tests.support.factories import Factory, Workspace
from tests.support.routes import api_routes, declaration

pytestmark = pytest.mark.e2e

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
VALIDATION_BODY = {"$ref": "#/components/schemas/ValidationErrorBody"}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def _expected_errors(app: FastAPI, method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses API.md's conventions imply for this operation."""
    expected: set[str] = set()
    parameters = operation.get("parameters", [])
    if "requestBody" in operation:
        expected |= {"400", "413", "422"}  # malformed JSON, over 1 MiB, invalid fields
    if parameters:
        expected.add("422")
    if not path.startswith(API_PREFIX + "/"):
        return expected
    declared = declaration(api_routes(app)[(method, path.removeprefix(API_PREFIX))])
    if not declared.public:
        expected.add("401")
    if declared.permissions or "operator" in declared.access:
        expected.add("403")
    # Any id in the path may name nothing in this workspace; a GDPR subject's address is the
    # exception: an unknown one answers an empty export and zero erasures.
    if any(p["in"] == "path" and p["name"] != "email" for p in parameters):
        expected.add("404")
    return expected


def test_openapi_describes_every_routes_error_responses(client: TestClient, app: FastAPI) -> None:
    doc = client.get("/openapi.json").json()
    problems: list[str] = []
    for method, path, operation in _operations(doc):
        responses = operation["responses"]
        missing = _expected_errors(app, method, path, operation) - set(responses)
        if missing:
            problems.append(f"{method} {path}: no {sorted(missing)}")
        for status, response in responses.items():
            if int(status) < 400:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema != (VALIDATION_BODY if status == "422" else ERROR_BODY):
                problems.append(f"{method} {path}: {status} has no error body ({schema})")
    assert problems == []
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["detail", "code"]
    assert set(schemas["FieldError"]["required"]) == {"loc", "msg", "type"}
    assert (
        "Retry-After"
        in doc["paths"][f"{API_PREFIX}/auth/login"]["post"]["responses"]["429"]["headers"]
    )


def _ref(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    found: dict[str, Any] = doc["components"]["schemas"].get(name, {})
    return found


def test_openapi_gives_every_list_its_limit_and_cursor(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    lists = []
    for method, path, operation in _operations(doc):
        ok = operation["responses"].get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if method != "GET" or set(_ref(doc, schema).get("properties", {})) != {
            "items",
            "next_cursor",
        }:
            continue
        lists.append(path)
        parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        limit = parameters["limit"]["schema"]
        assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50), path
        assert "cursor" in parameters, path
    assert len(lists) == len(LISTS)


# Every list route, with how to give it three items or more, and the field naming an item.
Seed = Callable[[TestClient, Factory, Workspace, dict[str, str]], dict[str, Any]]


def _tickets(client: TestClient, ws: Workspace, admin: dict[str, str]) -> list[int]:
    ids = []
    for n in range(3):
        body = {"title": f"ticket {n}", "customer_email": f"customer{n}@example.com"}
        created = client.post(f"{API_PREFIX}/tickets", json=body, headers=admin)
        assert created.status_code == 201, created.text
        ticket_id = created.json()["id"]
        assigned = client.patch(
            f"{API_PREFIX}/tickets/{ticket_id}",
            json={"assignee_id": str(ws.admin.user_id)},
            headers=admin,
        )
        assert assigned.status_code == 200, assigned.text
        ids.append(ticket_id)
    return ids


def _seed_tickets(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    _tickets(client, ws, admin)
    return {}


def _seed_comments(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    ticket_id = _tickets(client, ws, admin)[0]
    for n in range(3):
        added = client.post(
            f"{API_PREFIX}/tickets/{ticket_id}/comments", json={"body": f"c{n}"}, headers=admin
        )
        assert added.status_code == 201, added.text
    return {"ticket_id": ticket_id}


def _seed_members(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    factory.member(ws, "agent")
    factory.member(ws, "viewer")
    return {}


def _seed_roles(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    # Two custom roles after the five built-in ones: a page boundary falls between the two kinds.
    for name in ("zz-first", "zz-second"):
        body = {"name": name, "permissions": ["tickets.read"]}
        created = client.post(f"{API_PREFIX}/roles", json=body, headers=admin)
        assert created.status_code == 201, created.text
    return {}


def _seed_webhooks(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    for n in range(3):
        url = f"https://hooks.example.com/{n}"
        body = {"url": url, "events": ["ticket.created"], "secret": "s"}
        created = client.post(f"{API_PREFIX}/webhooks", json=body, headers=admin)
        assert created.status_code == 201, created.text
    return {}


def _seed_customers(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    for n in range(3):
        body = {"email": f"listed{n}@example.com", "name": f"Listed {n}"}
        created = client.post(f"{API_PREFIX}/customers", json=body, headers=admin)
        assert created.status_code == 201, created.text
    return {}


def _seed_audit(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    _seed_customers(client, factory, ws, admin)
    # Reading the trail is itself audited, so the walk keeps to events its own reads never add.
    return {"action": "customer.create"}


def _seed_workspaces(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str]
) -> dict[str, Any]:
    factory.workspace()
    factory.workspace()
    return {}


LISTS: dict[str, tuple[str, Seed, str]] = {
    "tickets": ("/tickets", _seed_tickets, "id"),
    "mine": ("/tickets/mine", _seed_tickets, "id"),
    "comments": ("/tickets/{ticket_id}/comments", _seed_comments, "id"),
    "customers": ("/customers", _seed_customers, "id"),
    "members": ("/members", _seed_members, "user_id"),
    "roles": ("/roles", _seed_roles, "name"),
    "webhooks": ("/webhooks", _seed_webhooks, "id"),
    "audit": ("/audit/events", _seed_audit, "id"),
    "workspaces": ("/platform/tenants", _seed_workspaces, "slug"),
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_list_pages_the_same_way(
    client: TestClient, factory: Factory, ws: Workspace, admin: dict[str, str], name: str
) -> None:
    template, seed, key = LISTS[name]
    context = seed(client, factory, ws, admin)
    headers = factory.headers(factory.operator(), None) if name == "workspaces" else admin
    url = API_PREFIX + template.format(**context)
    params = {k: v for k, v in context.items() if k not in template}

    def page(**extra: Any) -> Any:
        return client.get(url, params={**params, **extra}, headers=headers)

    # One item a page, cursor after cursor: past the built-in roles into the custom ones, but not
    # through every workspace the suite has made.
    walked: list[Any] = []
    cursors: list[str] = []
    cursor = None
    while len(walked) < 8:
        response = page(limit=1, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) == 1
        walked.append(body["items"][0][key])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    assert len(walked) >= 3
    # The same order as one page holding them all, and no item twice.
    assert [item[key] for item in page(limit=len(walked)).json()["items"]] == walked
    assert len(set(walked)) == len(walked)
    # Opaque: a cursor is not the key of the item it follows.
    assert not {str(item) for item in walked} & set(cursors)

    # "aWQ6wrI" is base64 of "id:²": str.isdigit() says yes, int() says no.
    bad_params: list[dict[str, Any]] = [
        {"limit": 0},
        {"limit": 201},
        {"cursor": "bm9wZQ"},
        {"cursor": "!"},
        {"cursor": "aWQ6wrI"},
    ]
    for bad in bad_params:
        refused = page(**bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert [error["loc"] for error in refused.json()["detail"]] == [["query", *bad]]
    for forged in ("bm9wZQ", "aWQ6wrI"):
        assert page(cursor=forged).json()["code"] == "invalid_cursor", forged


BEYOND_BIGINT = str(2**63)
# Input PostgreSQL itself would refuse (a NUL in text, an id past bigint, a slug that breaks the
# rule) must be refused as input, with the field named, before it gets there to fail as a 500.
HOSTILE: list[tuple[str, str, dict[str, Any], int, list[Any] | None]] = [
    (
        "POST",
        "/tickets",
        {"json": {"title": "a\x00b", "customer_email": "c@example.com"}},
        422,
        ["body", "title"],
    ),
    (
        "POST",
        "/customers",
        {"json": {"email": "c@example.com", "name": "\x00"}},
        422,
        ["body", "name"],
    ),
    ("GET", "/tickets", {"params": {"q": "a\x00"}}, 422, ["query", "q"]),
    ("GET", "/tickets", {"params": {"customer_id": BEYOND_BIGINT}}, 422, ["query", "customer_id"]),
    ("GET", f"/tickets/{BEYOND_BIGINT}", {}, 422, ["path", "ticket_id"]),
    ("DELETE", f"/webhooks/{BEYOND_BIGINT}", {}, 422, ["path", "webhook_id"]),
    (
        "GET",
        "/customers",
        {"params": {"cursor": "aWQ6OTIyMzM3MjAzNjg1NDc3NTgwOA"}},
        422,
        ["query", "cursor"],
    ),
    ("GET", "/gdpr/subjects/a%00@example.com/export", {}, 422, ["path", "email"]),
    ("GET", "/platform/tenants/a%00b", {}, 404, None),
    # Longer than the column once stored: percent-encoding makes one "é" six characters.
    (
        "POST",
        "/webhooks",
        {
            "json": {
                "url": "https://hooks.example.com/" + "é" * 400,
                "events": ["ticket.created"],
                "secret": "s",
            }
        },
        422,
        ["body", "url"],
    ),
    (
        "POST",
        "/webhooks",
        {
            "json": {
                "url": "https://hooks.example.com/" + "a" * 2000,
                "events": ["ticket.created"],
                "secret": "s",
            }
        },
        422,
        ["body", "url"],
    ),
    (
        "POST",
        "/tickets",
        {"json": {"title": "t" * 201, "customer_email": "c@example.com"}},
        422,
        ["body", "title"],
    ),
    (
        "POST",
        "/customers",
        {"json": {"email": "c@example.com", "name": "n", "company": "c" * 201}},
        422,
        ["body", "company"],
    ),
    ("PATCH", "/tickets/1", {"json": {"tags": ["t" * 65]}}, 422, ["body", "tags"]),
    ("PUT", "/settings", {"json": {"timezone": "Z" * 65}}, 422, ["body", "timezone"]),
    (
        "POST",
        "/platform/tenants",
        {
            "json": {
                "slug": "s" * 41,
                "name": "n",
                "admin_email": "a@example.com",
                "admin_password": "a quiet tangerine harbour",
            }
        },
        422,
        ["body", "slug"],
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "loc"), HOSTILE)
def test_input_postgresql_would_refuse_is_refused_first(
    client: TestClient,
    factory: Factory,
    ws: Workspace,
    admin: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    loc: list[Any] | None,
) -> None:
    if path.startswith("/platform/"):
        headers = factory.headers(factory.operator(), None)
    elif path.startswith("/gdpr/"):
        headers = factory.headers(factory.member(ws, "compliance"), ws)
    else:
        headers = admin
    response = client.request(method, API_PREFIX + path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    if loc is not None:
        assert [error["loc"] for error in response.json()["detail"]] == [loc]
