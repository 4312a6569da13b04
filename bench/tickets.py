"""Ticket create and list throughput through the whole app, against the same SQL sent with bare
psycopg, with 1 and with 1,000 workspaces present.

    python -m bench.tickets [--requests 500] [--workspaces 1000]

Starts its own embedded PostgreSQL (or uses --database-url), serves the app with uvicorn in a
separate process on 127.0.0.1, sends requests one at a time over a keep-alive connection, and
prints requests per second and the ratio app / bare.
The bare path sends the statements the app sends for one request (tenant scope, membership,
customer upsert, settings, ticket insert, outbox row, audit append), with psycopg's prepared
statements, so the ratio is the cost of FastAPI, pydantic, SQLAlchemy and the service code.
"""

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from bench.support import bench_database, bench_workspace, serve, signed_in_token
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from migrations.models import tenant_ddl
from tenants.provisioning import provision_tenant

GENESIS = "0" * 64


def rate(count: int, action: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for n in range(count):
        action(n)
    return count / (time.perf_counter() - started)


def bare_create(
    conn: psycopg.Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID, n: int
) -> None:
    with conn.transaction():
        conn.execute(
            "SELECT status, set_config('search_path', quote_ident(schema_name) || ', public', true),"
            " set_config('role', role_name, true) FROM public.tenants WHERE id = %s",
            (tenant_id,),
        )
        conn.execute(
            "SELECT m.role, m.email FROM public.members m"
            " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
            " WHERE m.user_id = %s AND m.tenant_id = %s",
            (user_id, tenant_id),
        )
        conn.execute(
            "INSERT INTO customers (email, name) VALUES (%s, '') ON CONFLICT (lower(email)) DO NOTHING",
            ("bench@example.com",),
        )
        customer = conn.execute(
            "SELECT id FROM customers WHERE lower(email) = lower(%s)", ("bench@example.com",)
        ).fetchone()
        conn.execute("SELECT * FROM workspace_settings")
        ticket = conn.execute(
            "INSERT INTO tickets (title, description, priority, customer_id, sla_due_at)"
            " VALUES (%s, '', 'medium', %s, now() + interval '24 hours') RETURNING id",
            (f"bare {n}", customer[0] if customer else None),
        ).fetchone()
        conn.execute(
            "SELECT id FROM webhooks WHERE active AND events @> ARRAY['ticket.created']::varchar[]"
        )
        conn.execute(
            "INSERT INTO outbox (kind, event, recipient, payload) VALUES ('email', 'ticket.created', %s, %s)",
            ("bench@example.com", json.dumps({"subject": "s", "body": "b"})),
        )
        _bare_audit(conn, user_id, "ticket.create", ticket[0] if ticket else None)


def _bare_audit(
    conn: psycopg.Connection[Any], user_id: uuid.UUID, action: str, target: object
) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 3)")
    row = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')),"
        " coalesce((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1), %s)",
        (GENESIS,),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO audit_events (id, occurred_at, actor_id, actor_role, action, target_type,"
        " target_id, outcome, changes, personal_data, personal, personal_digest, prev_hash, hash)"
        " VALUES (%s, now(), %s, 'admin', %s, 'ticket', %s, 'success', '{}', true, '{}', %s, %s, %s)",
        (row[0], user_id, action, str(target), GENESIS, row[1], uuid.uuid4().hex * 2),
    )


def bare_list(
    conn: psycopg.Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID, n: int
) -> None:
    with conn.transaction():
        conn.execute(
            "SELECT status, set_config('search_path', quote_ident(schema_name) || ', public', true),"
            " set_config('role', role_name, true) FROM public.tenants WHERE id = %s",
            (tenant_id,),
        )
        conn.execute(
            "SELECT m.role FROM public.members m WHERE m.user_id = %s AND m.tenant_id = %s",
            (user_id, tenant_id),
        )
        ids = [r[0] for r in conn.execute("SELECT * FROM tickets ORDER BY id LIMIT 51").fetchall()]
        conn.execute("SELECT ticket_id, tag FROM ticket_tags WHERE ticket_id = ANY(%s)", (ids,))
        conn.execute(
            "SELECT * FROM customers WHERE id IN (SELECT customer_id FROM tickets WHERE id = ANY(%s))",
            (ids,),
        )
        _bare_audit(conn, user_id, "ticket.list", None)


def measure(
    runtime: Runtime, libpq_url: str, tenant_id: uuid.UUID, user_id: uuid.UUID, requests: int
) -> dict[str, float]:
    token = signed_in_token(runtime, user_id, tenant_id)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"title": "bench", "customer_email": "bench@example.com"}
    with (
        serve(runtime.settings.database_url or "") as (base, _pid),
        httpx.Client(base_url=base) as client,
    ):
        client.post("/api/v1/tickets", json=body, headers=headers)  # warm-up
        app_create = rate(
            requests, lambda n: client.post("/api/v1/tickets", json=body, headers=headers)
        )
        app_list = rate(requests, lambda n: client.get("/api/v1/tickets", headers=headers))
    with psycopg.connect(libpq_url, prepare_threshold=0) as conn:
        bare_create(conn, tenant_id, user_id, -1)
        raw_create = rate(requests, lambda n: bare_create(conn, tenant_id, user_id, n))
        raw_list = rate(requests, lambda n: bare_list(conn, tenant_id, user_id, n))
    return {
        "app_create": app_create,
        "bare_create": raw_create,
        "app_list": app_list,
        "bare_list": raw_list,
    }


def report(label: str, figures: dict[str, float]) -> None:
    print(f"{label}:")
    for kind in ("create", "list"):
        app, bare = figures[f"app_{kind}"], figures[f"bare_{kind}"]
        print(
            f"  {kind:6}  app {app:8.1f} req/s   bare psycopg {bare:8.1f} req/s   app/bare {app / bare:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument(
        "--database-url", help="an empty database to use instead of an embedded server"
    )
    args = parser.parse_args()

    with bench_database(args.database_url) as bench:
        runtime, libpq_url = bench.runtime, bench.libpq_url
        tenant, user_id = bench_workspace(runtime, "bench_main", "Bench")
        tenant_id = tenant.id
        report("1 workspace", measure(runtime, libpq_url, tenant_id, user_id, args.requests))
        started = time.perf_counter()
        for n in range(args.workspaces - 1):
            with transaction(runtime.sessions) as session:
                provision_tenant(
                    session, slug=f"bench_{n:05d}", name=f"Bench {n}", ddl=tenant_ddl()
                )
        print(
            f"(provisioned {args.workspaces - 1} more workspaces in {time.perf_counter() - started:.1f} s)"
        )
        with runtime.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM public.tenants")).scalar_one()
        report(
            f"{count} workspaces", measure(runtime, libpq_url, tenant_id, user_id, args.requests)
        )


if __name__ == "__main__":
    main()
