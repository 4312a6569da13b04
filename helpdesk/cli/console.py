"""What every `helpdesk` sub-command shares: the consoles, and a runtime opened for one command."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

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
