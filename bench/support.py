"""What the benchmarks share: a database of their own, a workspace with an admin, the app served
by uvicorn in a separate process."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from auth.passwords import hash_password
from auth.refresh_tokens import start_session
from auth.tokens import issue_access_token
from auth.users import find_member_by_email
from helpdesk.core.db import transaction
from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.core.settings import Settings
from helpdesk.migrate import upgrade_public
from helpdesk.runtime import Runtime
from helpdesk.workspaces.service import create_workspace
from tenants.context import TenantRef
from tenants.registry import get_by_slug, to_ref

ADMIN_PASSWORD = "bench-password"


@dataclass(frozen=True)
class Bench:
    runtime: Runtime
    url: str  # SQLAlchemy form, for the app
    libpq_url: str  # the same database, for bare psycopg
    home: Path  # a scratch directory, removed at the end


@contextmanager
def bench_database(database_url: str | None) -> Iterator[Bench]:
    """The given empty database, or an embedded PostgreSQL in a temporary directory; the public
    schema migrated; everything started here stopped and removed on the way out."""
    home = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    embedded = None
    runtime = None
    try:
        if database_url:
            url = database_url
        else:
            embedded = EmbeddedPostgres(home / "pgdata", delete_on_stop=True)
            url = embedded.ensure_database("bench")
        settings = Settings(database_url=url, password_hash_profile="fast", pool_size=2)
        runtime = Runtime.connect(settings, url)
        upgrade_public(runtime.engine)
        yield Bench(runtime, url, url.replace("postgresql+psycopg://", "postgresql://", 1), home)
    finally:
        if runtime is not None:
            runtime.engine.dispose()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


def bench_workspace(runtime: Runtime, slug: str, name: str) -> tuple[TenantRef, uuid.UUID]:
    """A workspace with its first admin (admin@<slug>.example.com); returns it and the admin's id."""
    email = f"admin@{slug.replace('_', '-')}.example.com"
    with transaction(runtime.sessions) as session:
        created = create_workspace(
            session,
            slug=slug,
            name=name,
            admin_email=email,
            admin_password_hash=hash_password(ADMIN_PASSWORD),
        )
        tenant = to_ref(get_by_slug(session, slug))
        admin = find_member_by_email(session, created.id, email)
        assert admin is not None
        return tenant, admin.user_id


def signed_in_token(runtime: Runtime, user_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
    """An access token of a session of its own, as signing in opens one: the request path
    refuses a token whose session it cannot find."""
    with transaction(runtime.sessions) as session:
        session_id, _ = start_session(
            session, user_id=user_id, tenant_id=tenant_id, lifetime=timedelta(days=1)
        )
    return issue_access_token(runtime.settings, user_id, tenant_id, session_id)[0]


@contextmanager
def serve(database_url: str) -> Iterator[tuple[str, int]]:
    """The app under uvicorn in its own process, one worker, logging off: its URL and pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": database_url, "HELPDESK_PASSWORD_HASH_PROFILE": "fast"}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "helpdesk.asgi:create",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the server did not start")
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
