"""HTTP for /settings: the workspace's SLA hours, business hours and ticket automation."""

from typing import Annotated

from fastapi import APIRouter, Depends

from auth.permissions import Permission
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, Scope, require
from helpdesk.sla.models import WorkspaceSettings
from helpdesk.sla.policy import policy_table
from helpdesk.sla.schemas import WorkspaceSettingsIn, WorkspaceSettingsOut
from helpdesk.sla.service import load_settings, update_settings

router = APIRouter(prefix="/settings", tags=["settings"], route_class=AppRoute)

Manager = Annotated[Scope, Depends(require(Permission.SETTINGS_MANAGE))]


def _out(settings: WorkspaceSettings) -> WorkspaceSettingsOut:
    return WorkspaceSettingsOut.model_validate(
        {
            **{
                key: getattr(settings, key)
                for key in WorkspaceSettingsOut.model_fields
                if key != "sla_targets"
            },
            "sla_targets": policy_table(settings),
        }
    )


@router.get("", responses=error_responses(401, 403))
async def get_settings(scope: Manager) -> WorkspaceSettingsOut:
    return _out(await scope.run(load_settings))


@router.put("", responses=error_responses(400, 401, 403, 413, 422))
async def put_settings(body: WorkspaceSettingsIn, scope: Manager) -> WorkspaceSettingsOut:
    changes = body.model_dump(exclude_unset=True)
    if "sla_hours" in changes and changes["sla_hours"] is not None:
        changes["sla_hours"] = {str(k): v for k, v in changes["sla_hours"].items()}
    if changes.get("sla_policies") is not None:
        changes["sla_policies"] = body.model_dump(
            mode="json", include={"sla_policies"}, exclude_none=True
        )["sla_policies"]
    settings, diff = await scope.run(update_settings, changes)
    await scope.audit("settings.update", "workspace_settings", changes=diff)
    return _out(settings)
