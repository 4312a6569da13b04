"""The routing page: each member's skills (the ticket categories they are routed first) and
seniority (critical tickets go first to senior members), changed through the members service
as PATCH /members/{user_id} changes them. Whether tickets are assigned automatically, and from
which priority, is on the settings page."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission
from helpdesk.console.web import PREFIX, allow, page, parse, redirect
from helpdesk.members import service as members
from helpdesk.members.schemas import MemberPatch
from helpdesk.pipeline import AppRoute, Scope

router = APIRouter(route_class=AppRoute)

MemberManager = Annotated[Scope, Depends(allow(Permission.MEMBERS_MANAGE))]
# More than any workspace defines; the page shows one screenful without paging.
LIMIT = 500
# Fifty skills of at most 64 characters, with their separators (MemberPatch's own limits).
SKILLS_FORM_LENGTH = 50 * 66


@router.get("/members/routing")
async def routing_page(request: Request, scope: MemberManager, saved: bool = False) -> Response:
    rows = await scope.run(members.list_members, scope.caller, after=None, limit=LIMIT)
    await scope.audit("member.list", "member", changes={"count": len(rows)}, personal_data=True)
    return page(
        request,
        "routing.html",
        scope,
        title="Routing: skills and seniority",
        members=rows,
        saved=saved,
    )


@router.post("/members/{user_id}/routing")
async def set_routing(
    user_id: uuid.UUID,
    scope: MemberManager,
    skills: Annotated[str, Form(max_length=SKILLS_FORM_LENGTH)] = "",
    senior: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Skills typed as a comma-separated list, replacing the member's; the box unticked makes
    them not senior."""
    body = parse(MemberPatch, skills=skills.split(","), senior=senior == "on")
    _, changes = await scope.run(members.update_member, scope.caller, user_id, body)
    await scope.audit("member.update", "member", user_id, changes=changes)
    return redirect(f"{PREFIX}/members/routing?saved=true")
