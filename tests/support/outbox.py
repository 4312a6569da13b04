"""What a delivery run did, read back for the outbox tests."""

from sqlalchemy import select

from helpdesk.core.db import tenant_transaction
from helpdesk.outbox.models import DeliveryAttempt
from helpdesk.outbox.worker import DeliveryReport
from helpdesk.runtime import Runtime
from tests.support.factories import Workspace


def attempts(runtime: Runtime, ws: Workspace, outbox_id: int) -> list[tuple[int | None, str]]:
    """Each attempt at one outbox message, oldest first: (status code, error or "")."""
    with tenant_transaction(runtime.sessions, ws.schema_name, ws.role_name) as session:
        rows = session.execute(
            select(DeliveryAttempt.status_code, DeliveryAttempt.error)
            .where(DeliveryAttempt.outbox_id == outbox_id)
            .order_by(DeliveryAttempt.id)
        ).all()
    return [(code, error or "") for code, error in rows]


def counts(report: DeliveryReport) -> tuple[int, int, int]:
    """(delivered, retrying, failed)."""
    return report.delivered, report.retrying, report.failed
