"""The application factory."""

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
from helpdesk.errors import install_error_handlers
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
from helpdesk.workspaces.routes import router as workspaces_router


def create_app(runtime: Runtime) -> FastAPI:
    logging.getLogger("helpdesk").setLevel(logging.INFO)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The async engine and the admission slots belong to the serving event loop.
        path = RequestPath.open(runtime)
        app.state.request_path = path
        app.state.metrics.watch(path)
        try:
            yield
        finally:
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
    for router in (
        signin_router,
        workspaces_router,
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
        app.include_router(router, prefix=API_PREFIX)
    # After the API's error handlers: the console renders its errors as pages.
    install_console(app, console_routers)
    return app
