"""Every router of the console, in the order they are mounted under /app."""

from fastapi import APIRouter

from helpdesk.console.routes_admin import router as admin_router
from helpdesk.console.routes_compliance import router as compliance_router
from helpdesk.console.routes_customers import router as customers_router
from helpdesk.console.routes_dashboard import router as dashboard_router
from helpdesk.console.routes_portal import router as portal_router
from helpdesk.console.routes_routing import router as routing_router
from helpdesk.console.routes_session import router as session_router
from helpdesk.console.routes_tickets import router as tickets_router
from helpdesk.console.routes_workspace import router as workspace_router

ROUTERS: list[APIRouter] = [
    session_router,
    tickets_router,
    customers_router,
    admin_router,
    routing_router,
    compliance_router,
    portal_router,
    dashboard_router,
    workspace_router,
]
