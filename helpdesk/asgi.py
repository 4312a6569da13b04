"""The ASGI factory every worker process serves: `helpdesk serve --workers N` runs it in each of
its N processes (after migrating once, in the parent), and a process manager can run
`uvicorn --factory helpdesk.asgi:create` with ``DATABASE_URL`` set (migrations are then
`helpdesk migrate`'s job, not each worker's). Each process also runs the scheduled jobs unless
``HELPDESK_WORKER=false`` (`serve --no-worker`)."""

from fastapi import FastAPI

from helpdesk.app import create_app
from helpdesk.core.settings import ConfigurationError, get_settings
from helpdesk.runtime import Runtime


def create() -> FastAPI:
    settings = get_settings()
    settings.check_production()
    if not settings.database_url:
        raise ConfigurationError("set DATABASE_URL; the embedded server is `helpdesk serve`'s")
    return create_app(Runtime.connect(settings, settings.database_url), worker=settings.worker)
