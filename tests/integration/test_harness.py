"""The harness itself: one database per xdist worker, cloned from this run's template."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from helpdesk.migrate import public_config
from helpdesk.runtime import Runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()
HARNESS_TESTS = (
    "test_worker_database_carries_the_worker_id",
    "test_worker_database_was_cloned_from_this_runs_template",
)
# Guards against a hang only; nothing here measures speed.
INNER_RUN_TIMEOUT_SECONDS = 300


def test_worker_database_carries_the_worker_id(
    runtime: Runtime, worker_id_name: str, pg_info: dict[str, str]
) -> None:
    with runtime.engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
    assert name == f"{pg_info['prefix']}_{worker_id_name}"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        assert re.fullmatch(r"gw\d+", worker_id_name)


def test_worker_database_was_cloned_from_this_runs_template(
    runtime: Runtime, pg_info: dict[str, str]
) -> None:
    with runtime.engine.connect() as conn:
        token = conn.execute(text("SELECT token FROM public.test_template_origin")).scalar_one()
        version = conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    assert token == pg_info["token"]
    assert version == ScriptDirectory.from_config(public_config()).get_current_head()


def _databases(admin_url: str, prefix: str) -> list[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
            (prefix,),
        ).fetchall()
    return [row[0] for row in rows]


def _inner_env(admin_url: str, prefix: str) -> dict[str, str]:
    """This environment, minus what marks the process as a worker of the outer run."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_CORE_", "COVERAGE_", "HELPDESK_TEST_"))
    }
    env.update(TEST_DATABASE_URL=admin_url, HELPDESK_TEST_DB_PREFIX=prefix)
    return env


@pytest.mark.slow
def test_two_workers_each_run_in_their_own_clone_of_the_template(
    pg_info: dict[str, str],
) -> None:
    """``pytest -n 2`` against this run's server, given as TEST_DATABASE_URL: both workers run
    both harness tests above (``--dist each``), so each worker's database is checked for its
    name and its template, and the run leaves no database of its own behind."""
    prefix = f"hd_inner_{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--dist",
        "each",
        "-v",
        *(f"{THIS_FILE}::{name}" for name in HARNESS_TESTS),
    ]
    inner = subprocess.run(  # noqa: S603 - this interpreter running pytest on our own tests
        command,
        cwd=ROOT,
        env=_inner_env(pg_info["admin_url"], prefix),
        capture_output=True,
        text=True,
        timeout=INNER_RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = inner.stdout + inner.stderr
    assert inner.returncode == 0, output
    assert "PostgreSQL provider: url" in output
    passed = set(re.findall(r"\[(gw\d+)\].*PASSED \S+::(test_\w+)", output))
    assert passed == {(worker, name) for worker in ("gw0", "gw1") for name in HARNESS_TESTS}, output
    assert _databases(pg_info["admin_url"], prefix) == []
