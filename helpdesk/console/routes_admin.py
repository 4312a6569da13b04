"""Tenant admins' pages: members (invite, change role, remove), roles as a permission matrix
(built-in read-only, custom editable within the caller's own permissions), and the invitation
accept page. Rules (last admin, privilege ceilings, own role) are the services'; a refusal
comes back as the service's own sentence on an error page."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission
from helpdesk.console import passwords
from helpdesk.console.web import PREFIX, allow, check_origin, page, parse, redirect
from helpdesk.core.errors import AppError
from helpdesk.members import service as members
from helpdesk.members.schemas import MemberIn, MemberOut, MemberPatch
from helpdesk.pipeline import AppRoute, RequestPathDep, RuntimeDep, Scope, public
from helpdesk.roles import service as roles
from helpdesk.roles.schemas import RoleIn, RolePatch
from helpdesk.signin import service as signin

router = APIRouter(route_class=AppRoute)

MemberManager = Annotated[Scope, Depends(allow(Permission.MEMBERS_MANAGE))]
RoleManager = Annotated[Scope, Depends(allow(Permission.ROLES_MANAGE))]
# More than any workspace defines; the pages show one screenful without paging.
LIMIT = 500


async def _members_page(
    request: Request,
    scope: Scope,
    rows: list[MemberOut],
    *,
    invitation: str | None = None,
    added: str = "",
) -> Response:
    role_names = [
        r.name for r in await scope.run(roles.list_roles, scope.caller, after=None, limit=LIMIT)
    ]
    link = None
    if invitation:
        link = f"{request.base_url}app/invitations/accept?token={invitation}"
    return page(
        request,
        "members.html",
        scope,
        title="Members",
        members=rows,
        roles=role_names,
        invitation_link=link,
        added=added,
    )


@router.get("/members")
async def member_list(request: Request, scope: MemberManager) -> Response:
    rows = await scope.run(members.list_members, scope.caller, after=None, limit=LIMIT)
    await scope.audit("member.list", "member", changes={"count": len(rows)}, personal_data=True)
    return await _members_page(request, scope, rows)


@router.post("/members")
async def invite(
    request: Request,
    scope: MemberManager,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=64)],
) -> Response:
    """Invite without a password: the new member sets theirs from the one-time link, e-mailed
    to them through the outbox and shown here once (the API's ``invitation_token``), for a
    workspace whose e-mail is not set up yet."""
    body = parse(MemberIn, email=email, name=name, role=role)
    member, invitation = await scope.run(members.add_member, scope.caller, body, password_hash=None)
    if invitation is not None:
        await scope.run(
            passwords.invitation_email,
            workspace=scope.caller.workspace.name,
            email=member.email,
            token=invitation,
            base_url=str(request.base_url),
        )
    await scope.audit(
        "member.add",
        "member",
        member.user_id,
        changes={"email": member.email, "role": member.role, "invited": invitation is not None},
        personal_data=True,
    )
    rows = await scope.run(members.list_members, scope.caller, after=None, limit=LIMIT)
    return await _members_page(request, scope, rows, invitation=invitation, added=member.email)


@router.post("/members/{user_id}/role")
async def change_role(
    user_id: uuid.UUID, scope: MemberManager, role: Annotated[str, Form(max_length=64)]
) -> Response:
    _, changes = await scope.run(
        members.update_member, scope.caller, user_id, MemberPatch(role=role)
    )
    await scope.audit("member.role_change", "member", user_id, changes=changes)
    return redirect(f"{PREFIX}/members")


@router.post("/members/{user_id}/remove")
async def remove(user_id: uuid.UUID, scope: MemberManager) -> Response:
    removed = await scope.run(members.remove_member, scope.caller, user_id)
    await scope.audit("member.remove", "member", user_id, changes={"role": removed.role})
    return redirect(f"{PREFIX}/members")


@router.get("/roles")
async def role_matrix(request: Request, scope: RoleManager) -> Response:
    rows = await scope.run(roles.list_roles, scope.caller, after=None, limit=LIMIT)
    return page(
        request,
        "roles.html",
        scope,
        title="Roles",
        roles=rows,
        permissions=list(Permission),
        grantable={p.value for p in scope.caller.permissions},
    )


def _chosen(form_permissions: list[str]) -> list[str]:
    return sorted(set(form_permissions))


@router.post("/roles")
async def create_role(
    scope: RoleManager,
    name: Annotated[str, Form(max_length=64)],
    permissions: Annotated[list[str] | None, Form()] = None,
    ticket_scope: Annotated[str, Form(max_length=16)] = "all",
) -> Response:
    body = parse(
        RoleIn, name=name, permissions=_chosen(permissions or []), ticket_scope=ticket_scope
    )
    role = await scope.run(roles.create_role, scope.caller, body)
    await scope.audit("role.create", "role", role.name, changes=role.model_dump(mode="json"))
    return redirect(f"{PREFIX}/roles")


@router.post("/roles/{name}")
async def update_role(
    name: str,
    scope: RoleManager,
    permissions: Annotated[list[str] | None, Form()] = None,
) -> Response:
    body = parse(RolePatch, permissions=_chosen(permissions or []))
    _, changes = await scope.run(roles.update_role, scope.caller, name, body)
    await scope.audit("role.update", "role", name, changes=changes)
    return redirect(f"{PREFIX}/roles")


@router.post("/roles/{name}/delete")
async def delete_role(name: str, scope: RoleManager) -> Response:
    await scope.run(roles.delete_role, scope.caller, name)
    await scope.audit("role.delete", "role", name)
    return redirect(f"{PREFIX}/roles")


@router.get("/invitations/accept")
@public
async def accept_form(request: Request, token: str = "") -> Response:
    return page(request, "accept.html", title="Set your password", token=token)


@router.post("/invitations/accept", dependencies=[Depends(check_origin)])
@public
async def accept(
    request: Request,
    runtime: RuntimeDep,
    path: RequestPathDep,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        email = await path.off_loop(signin.accept_invitation, runtime.sessions, token, password)
    except AppError as refusal:
        return page(
            request,
            "accept.html",
            status_code=refusal.status_code,
            title="Set your password",
            token=token,
            error=refusal.detail,
        )
    return page(request, "accept.html", title="Password set", done=email)


@router.get("/password/forgot")
@public
async def forgot_form(request: Request) -> Response:
    return page(request, "forgot.html", title="Forgot your password?")


@router.post("/password/forgot", dependencies=[Depends(check_origin)])
@public
async def forgot(
    request: Request,
    runtime: RuntimeDep,
    path: RequestPathDep,
    workspace: Annotated[str, Form(max_length=63)],
    email: Annotated[str, Form(max_length=320)],
) -> Response:
    # The same answer whether or not the address has an account there: the page must not
    # tell who is a member.
    await path.off_loop(
        passwords.request_reset,
        runtime.sessions,
        workspace=workspace.strip(),
        email=email.strip(),
        base_url=str(request.base_url),
    )
    return page(request, "forgot.html", title="Forgot your password?", sent=True)
