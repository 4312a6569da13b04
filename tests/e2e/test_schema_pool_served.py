"""Workspaces created at once over HTTP, by the served app on its async request path, each
claim a different ready schema from the pool, and the ones the pool cannot serve are built."""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select, text

from helpdesk.app import create_app
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from helpdesk.workspaces.service import purge_workspace
from tenants.models import Tenant
from tenants.slugs import schema_name
from tests.support.factories import PASSWORD, Factory, unique_slug
from tests.support.live_server import live_server
from tests.support.pool import filled_pool, pool_names

pytestmark = pytest.mark.e2e

READY, CREATED = 3, 8
_OIDS = text("SELECT oid::bigint FROM pg_namespace WHERE nspname = ANY(:n)")


async def _create_all(base_url: str, headers: dict[str, str], slugs: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/platform/tenants",
                    json={
                        "slug": slug,
                        "name": f"Workspace {slug}",
                        "admin_email": f"admin-{uuid.uuid4().hex[:8]}@example.com",
                        "admin_password": PASSWORD,
                    },
                    headers=headers,
                )
                for slug in slugs
            )
        )
    return [response.status_code for response in responses]


def test_workspaces_created_at_once_claim_different_ready_schemas(
    service_runtime: Runtime, runtime: Runtime, factory: Factory
) -> None:
    operator = factory.headers(factory.operator(), None)
    slugs = [unique_slug("served") for _ in range(CREATED)]
    served_runtime = Runtime.connect(
        service_runtime.settings.model_copy(update={"pool_size": CREATED}),
        service_runtime.database_url,
    )
    try:
        with filled_pool(service_runtime, READY) as ready:
            with runtime.engine.connect() as conn:
                ready_oids = set(conn.scalars(_OIDS, {"n": ready}))
            with live_server(create_app(served_runtime)) as server:
                statuses = asyncio.run(_create_all(server.base_url, operator, slugs))
            left = pool_names(service_runtime)
            with runtime.engine.connect() as conn:
                created = list(conn.scalars(_OIDS, {"n": [schema_name(slug) for slug in slugs]}))
    finally:
        served_runtime.engine.dispose()
        with transaction(service_runtime.sessions) as session:
            made = session.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs)))
            for slug in list(made):
                purge_workspace(session, slug)
    assert statuses == [201] * CREATED
    assert left == []
    assert len(created) == CREATED
    assert sorted(oid for oid in created if oid in ready_oids) == sorted(ready_oids)
