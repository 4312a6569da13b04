"""Workspace administration pages: settings (SLA hours, business hours, auto-assignment and
the lowest priority it takes, auto-close; the tier targets that follow) and webhooks. Each form
calls the API route it stands for, so validation, the change's diff and its audit event are the
API's."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission
from helpdesk.console.web import PREFIX, allow, page, parse, redirect
from helpdesk.customers.schemas import CustomerTier
from helpdesk.pipeline import AppRoute, RowId, RuntimeDep, Scope
from helpdesk.sla import routes as settings_routes
from helpdesk.sla.schemas import WorkspaceSettingsIn
from helpdesk.tickets.schemas import TicketPriority
from helpdesk.webhooks import routes as webhook_routes
from helpdesk.webhooks.schemas import WebhookEvent, WebhookIn

router = APIRouter(route_class=AppRoute)

SettingsManager = Annotated[Scope, Depends(allow(Permission.SETTINGS_MANAGE))]
WebhookManager = Annotated[Scope, Depends(allow(Permission.WEBHOOKS_MANAGE))]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
Field = Annotated[str, Form(max_length=64)]


async def _settings_page(request: Request, scope: Scope, **context: Any) -> Response:
    current = await settings_routes.get_settings(scope)
    return page(
        request,
        "settings.html",
        scope,
        title="Workspace settings",
        settings=current,
        priorities=list(TicketPriority),
        weekdays=list(enumerate(WEEKDAYS, start=1)),
        **context,
    )


@router.get("/settings")
async def settings_form(request: Request, scope: SettingsManager) -> Response:
    return await _settings_page(request, scope)


@router.post("/settings")
async def save_settings(request: Request, scope: SettingsManager) -> Response:
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    body = parse(
        WorkspaceSettingsIn,
        sla_hours={
            p.value: text(f"sla_{p.value}") for p in TicketPriority if text(f"sla_{p.value}")
        },
        business_hours_only=text("business_hours_only") == "on",
        timezone=text("timezone"),
        business_start=text("business_start"),
        business_end=text("business_end"),
        business_days="".join(str(n) for n in range(1, 8) if text(f"day_{n}") == "on"),
        auto_assign=text("auto_assign") == "on",
        auto_assign_min_priority=text("auto_assign_min_priority") or None,
        auto_close_days=text("auto_close_days") or "0",
    )
    await settings_routes.put_settings(body, scope)
    return await _settings_page(request, scope, saved=True)


TARGETS = (("first_response_hours", "first response"), ("resolution_hours", "resolution"))


async def _tiers_page(request: Request, scope: Scope, **context: Any) -> Response:
    current = await settings_routes.get_settings(scope)
    return page(
        request,
        "tiers.html",
        scope,
        title="Service levels per customer tier",
        settings=current,
        tiers=list(CustomerTier),
        priorities=list(TicketPriority),
        targets=TARGETS,
        **context,
    )


@router.get("/settings/tiers")
async def tiers_form(request: Request, scope: SettingsManager) -> Response:
    return await _tiers_page(request, scope)


@router.post("/settings/tiers")
async def save_tiers(request: Request, scope: SettingsManager) -> Response:
    """Every override at once, as PUT /settings takes ``sla_policies``: a box left blank
    follows its tier's default."""
    form = await request.form()
    policies: dict[str, dict[str, dict[str, str]]] = {}
    for tier in CustomerTier:
        for priority in TicketPriority:
            for key, _ in TARGETS:
                value = form.get(f"{tier.value}-{priority.value}-{key}")
                if isinstance(value, str) and value.strip():
                    cell = policies.setdefault(tier.value, {}).setdefault(priority.value, {})
                    cell[key] = value.strip()
    body = parse(WorkspaceSettingsIn, sla_policies=policies)
    await settings_routes.put_settings(body, scope)
    return await _tiers_page(request, scope, saved=True)


@router.get("/webhooks")
async def webhooks(request: Request, scope: WebhookManager) -> Response:
    listed = await webhook_routes.list_webhooks(scope, limit=200, cursor=None)
    return page(
        request,
        "webhooks.html",
        scope,
        title="Webhooks",
        webhooks=listed.items,
        events=list(WebhookEvent),
    )


@router.post("/webhooks")
async def add_webhook(
    scope: WebhookManager,
    runtime: RuntimeDep,
    url: Annotated[str, Form(max_length=2000)],
    secret: Annotated[str, Form(max_length=200)],
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    body = parse(WebhookIn, url=url, events=events or [], secret=secret)
    await webhook_routes.create_webhook(body, scope, runtime)
    return redirect(f"{PREFIX}/webhooks")


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: RowId, scope: WebhookManager) -> Response:
    await webhook_routes.delete_webhook(webhook_id, scope)
    return redirect(f"{PREFIX}/webhooks")
