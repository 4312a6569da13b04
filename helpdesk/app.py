"""The application factory."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from helpdesk.comments.routes import router as comments_router
from helpdesk.compliance.audit_routes import router as audit_router
from helpdesk.compliance.export_routes import router as export_router
from helpdesk.compliance.gdpr_routes import router as gdpr_router
from helpdesk.compliance.retention_routes import router as retention_router
from helpdesk.console.routes import ROUTERS as console_routers
from helpdesk.console.web import install as install_console
from helpdesk.core.request_context import API_PREFIX
from helpdesk.customers.routes import router as customers_router
from helpdesk.errors import error_responses, install_error_handlers
from helpdesk.health import router as health_router
from helpdesk.members.routes import router as members_router
from helpdesk.metrics import Metrics
from helpdesk.middleware import ReadRetryMiddleware, RequestContextMiddleware
from helpdesk.roles.routes import router as roles_router
from helpdesk.runtime import RequestPath, Runtime
from helpdesk.signin.routes import router as signin_router
from helpdesk.sla.routes import router as settings_router
from helpdesk.tickets.routes import router as tickets_router
from helpdesk.webhooks.routes import router as webhooks_router
from helpdesk.worker.loop import Worker
from helpdesk.workspaces.routes import router as workspaces_router

_WORKSPACE_REFUSALS = error_responses(
    429,
    503,
    described={
        429: "This workspace is sending requests faster than its rate (code `rate_limited`): "
        "retry after the seconds in `Retry-After`."
    },
)


def create_app(runtime: Runtime, *, worker: bool = False) -> FastAPI:
    """The app on ``runtime``. ``worker``: also run the scheduled jobs in this process while it
    serves (the ASGI factory does, from settings; tests run jobs themselves, at chosen times)."""
    logging.getLogger("helpdesk").setLevel(logging.INFO)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The async engine and the admission slots belong to the serving event loop.
        path = RequestPath.open(runtime)
        app.state.request_path = path
        app.state.metrics.watch(path)
        jobs = Worker.for_runtime(runtime) if worker else None
        app.state.worker = jobs
        if jobs is not None:
            app.state.metrics.watch_worker(jobs.stats)
            jobs.start()
        try:
            yield
        finally:
            # uvicorn runs this after the drain (SIGTERM: in-flight requests finished or the
            # grace ran out). A job run under way finishes its current workspace, for at most
            # the same grace; its threads are daemons, so nothing outlives the process.
            if jobs is not None:
                await asyncio.to_thread(jobs.stop, runtime.settings.shutdown_grace_seconds)
                app.state.metrics.watch_worker(None)
            await path.close()

    app = FastAPI(
        title="Helpdesk",
        version="1",
        description="Multi-tenant customer-support ticketing. See API.md for the contract.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.state.metrics = Metrics(runtime.settings)
    app.add_middleware(ReadRetryMiddleware)
    # Added last, so outermost: the retried read is logged and counted once.
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.include_router(health_router)
    # Refusals any route may answer, documented once here rather than on each: every API route
    # waits for a database connection within a bound (503), and a workspace's routes are held to
    # its request rate first (429). A route's own entry for a status, if any, wins.
    for router in (signin_router, workspaces_router):
        app.include_router(router, prefix=API_PREFIX, responses=error_responses(503))
    for router in (
        tickets_router,
        comments_router,
        customers_router,
        members_router,
        roles_router,
        audit_router,
        export_router,
        gdpr_router,
        retention_router,
        webhooks_router,
        settings_router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=_WORKSPACE_REFUSALS)
    # After the API's error handlers: the console renders its errors as pages.
    install_console(app, console_routers)
    return app
