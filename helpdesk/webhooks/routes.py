"""HTTP for /webhooks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from auth.permissions import Permission
from helpdesk.core.pagination import Limit, decode_cursor, id_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RowId, RuntimeDep, Scope, require
from helpdesk.webhooks import service
from helpdesk.webhooks.schemas import WebhookIn, WebhookOut, WebhookPage

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=AppRoute)

Manager = Annotated[Scope, Depends(require(Permission.WEBHOOKS_MANAGE))]


@router.get("", responses=error_responses(401, 403, 422))
async def list_webhooks(
    scope: Manager,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> WebhookPage:
    rows = await scope.run(service.list_webhooks, after_id=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = id_page([WebhookOut.model_validate(w) for w in rows], limit)
    return WebhookPage(items=items, next_cursor=next_cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 413, 422)
)
async def create_webhook(body: WebhookIn, scope: Manager, runtime: RuntimeDep) -> WebhookOut:
    allow_private = runtime.settings.webhook_allow_private_addresses
    webhook = await scope.run(service.create_webhook, body, allow_private=allow_private)
    # The secret stays out of the audit trail, as it stays out of every response.
    await scope.audit(
        "webhook.create",
        "webhook",
        webhook.id,
        changes={"url": webhook.url, "events": webhook.events},
    )
    return WebhookOut.model_validate(webhook)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: RowId, scope: Manager) -> Response:
    await scope.run(service.delete_webhook, webhook_id)
    await scope.audit("webhook.delete", "webhook", webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
