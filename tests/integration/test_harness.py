"""The harness itself: one database per xdist worker, cloned from this run's template."""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from helpdesk.migrate import public_config
from helpdesk.runtime import Runtime

pytestmark = pytest.mark.integration


def test_worker_database_carries_the_worker_id(runtime: Runtime, worker_id_name: str) -> None:
    with runtime.engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
    assert name == f"helpdesk_test_{worker_id_name}"


def test_worker_database_was_cloned_from_this_runs_template(
    runtime: Runtime, pg_info: dict[str, str]
) -> None:
    with runtime.engine.connect() as conn:
        token = conn.execute(text("SELECT token FROM public.test_template_origin")).scalar_one()
        version = conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    assert token == pg_info["token"]
    assert version == ScriptDirectory.from_config(public_config()).get_current_head()
