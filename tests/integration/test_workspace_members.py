"""'The members of this workspace' means the workspace whose schema the transaction is in, also
for a role that row-level security does not narrow (the owner here, a job's role in general):
one person's id recurs across workspaces since identities were copied into each."""

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from auth.permissions import Permission
from auth.users import address_of, addresses_holding
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace


@pytest.fixture
def in_schema(runtime: Runtime) -> Callable[[Workspace], Session]:
    """A transaction of the owner's (no row-level security) whose schema is ``ws``'s."""

    def scope(ws: Workspace) -> Session:
        session = runtime.sessions()
        session.begin()
        session.execute(
            text("SELECT set_config('search_path', :schema, true)"), {"schema": ws.schema_name}
        )
        return session

    return scope


def test_a_person_in_two_workspaces_is_found_only_in_the_one_the_transaction_is_in(
    factory: Factory, runtime: Runtime, in_schema: Callable[[Workspace], Session]
) -> None:
    here, there = factory.workspace(), factory.workspace()
    # The same person (one id) is an admin in both, under a different address in each.
    elsewhere = factory.member(there, "admin", user_id=here.admin.user_id)

    for ws, member in ((here, here.admin), (there, elsewhere)):
        session = in_schema(ws)
        try:
            assert address_of(session, member.user_id) == member.email
            holding = addresses_holding(session, Permission.SLA_ALERTS)
        finally:
            session.rollback()
            session.close()
        others = {here.admin.email, elsewhere.email} - {member.email}
        assert member.email.lower() in holding
        assert others.isdisjoint(holding)
    with transaction(runtime.sessions) as session:
        assert (
            session.scalar(
                text("SELECT count(*) FROM public.members WHERE user_id = :u"),
                {"u": here.admin.user_id},
            )
            == 2
        )
