"""Whom a caller may assign tickets to: the members who may work tickets, and nobody for a
caller without ``tickets.assign`` (their names are not its to list)."""

import pytest

from auth.caller import Caller
from auth.permissions import BUILTIN_ROLES, BUILTIN_TICKET_SCOPES
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from helpdesk.tickets.service import assignable_members
from tenants.context import TenantRef
from tests.support.factories import Factory, Member, Workspace

pytestmark = pytest.mark.integration


def _caller(ws: Workspace, member: Member) -> Caller:
    return Caller(
        user_id=member.user_id,
        email=member.email,
        name=member.role,
        role=member.role,
        permissions=BUILTIN_ROLES[member.role],
        ticket_scope=BUILTIN_TICKET_SCOPES[member.role],
        tenant=TenantRef(ws.id, ws.slug, ws.slug, ws.schema_name, ws.role_name, "active"),
    )


def test_only_members_who_work_tickets_are_offered_and_only_to_assigners(
    service_runtime: Runtime, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    viewer = factory.member(ws, "viewer")
    factory.member(ws, "customer")
    factory.member(ws, "compliance")
    with tenant_transaction(service_runtime.sessions, ws.schema_name, ws.role_name) as session:
        offered = assignable_members(session, _caller(ws, agent))
        refused = assignable_members(session, _caller(ws, viewer))
    assert {w.user_id for w in offered} == {ws.admin.user_id, agent.user_id}
    assert refused == []
