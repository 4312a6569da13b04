"""alembic's PostgreSQL operations with their DDL held back, to travel with the next statement.

A fan-out sends the same few DDL statements to every workspace. Sent one by one, each is a
round trip, and on a busy machine a round trip (waking the server, waiting for it) costs more
than the statement: with the fixture revision's column and index and the workspace's claim
sent apart, 1,000 workspaces took 2.6 to 2.9 times the raw-SQL floor's one round trip each;
held back, so that a workspace's DDL goes in one message with the next workspace's claim, 1.8
to 1.9 times (bench/README.md).

Only DDL without parameters is held. Anything else sent through the SQLAlchemy connection (an
``op.execute``, a query on ``op.get_bind()``, a bulk insert) first sends what is held, so the
server sees every statement in the order the revision made it. SQL sent on the driver
connection behind SQLAlchemy's back would overtake held DDL: revisions do not do that.
"""

from typing import Any

from alembic.ddl.postgresql import PostgresqlImpl
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import Connection, event
from sqlalchemy.schema import DDLElement


class HeldDDL(PostgresqlImpl):
    # No ``__dialect__`` of its own: alembic registers a class that names one in place of its
    # PostgreSQL implementation for the whole process.

    held: list[str]

    def _exec(
        self,
        construct: Any,
        execution_options: Any = None,
        multiparams: Any = None,
        params: Any = None,
    ) -> Any:
        if isinstance(construct, DDLElement) and not (execution_options or multiparams or params):
            self.held.append(str(construct.compile(dialect=self.dialect)))
            return None
        return super()._exec(construct, execution_options, multiparams, params or {})

    def send(self, statement: sql.Composable | None = None) -> Any:
        """Send the held DDL, then ``statement``, in one round trip (one simple-query message,
        so one statement's error stops the rest); the cursor is left on the last result."""
        parts: list[sql.Composable] = [sql.SQL(ddl) for ddl in self.held]
        self.held = []
        if statement is not None:
            parts.append(statement)
        if not parts:
            return None
        raw: Any = self.connection.connection.driver_connection  # type: ignore[union-attr]
        cursor = raw.execute(sql.SQL("; ").join(parts))
        while cursor.nextset():
            pass
        return cursor


def operations_holding_ddl(connection: Connection) -> tuple[Operations, HeldDDL]:
    """alembic ``Operations`` on ``connection`` whose DDL waits for ``HeldDDL.send``; whatever
    else the connection executes sends it first."""
    context = MigrationContext.configure(connection)
    impl = HeldDDL(
        connection.dialect, connection, False, context.impl.transactional_ddl, None, context.opts
    )
    impl.held = []
    context.impl = impl

    @event.listens_for(connection, "before_cursor_execute")
    def send_held_first(*_args: Any) -> None:
        impl.send()

    return Operations(context), impl
