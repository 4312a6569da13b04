"""The pure rules behind the jobs and the one ticket change path: how a run walks in batches,
which workspaces it leaves alone and why, the lock keys, the escalation ladder, and the status
workflow every ticket change obeys."""

from collections.abc import Callable, Sequence

import pytest

from helpdesk.core.errors import Conflict
from helpdesk.sla.jobs import next_priority
from helpdesk.tickets.schemas import TicketStatus
from helpdesk.tickets.service import check_change
from tenants.jobs import Batches, not_worked_reason, walk
from tenants.locks import LockKey
from tenants.models import TenantStatus

pytestmark = pytest.mark.unit


class Rows:
    """Rows a step can take, by id; ``held`` ones are locked by someone else (SKIP LOCKED)."""

    def __init__(self, ids: Sequence[int], held: Sequence[int] = ()) -> None:
        self.ids, self.held = list(ids), set(held)
        self.afters: list[int] = []

    def step(self, batch_size: int) -> Callable[[int], list[int]]:
        def take(after: int) -> list[int]:
            self.afters.append(after)
            free = [i for i in self.ids if i > after and i not in self.held]
            return free[:batch_size]

        return take


WALKS = [
    # ids              held       size  max    rows  batches  afters the steps were given
    ([],               [],        2,    None,  0,    0,       [0]),
    ([1, 2, 3, 4, 5],  [],        2,    None,  5,    3,       [0, 2, 4]),
    ([1, 2, 3, 4],     [],        2,    None,  4,    2,       [0, 2, 4]),  # full: ask again
    ([1, 2, 3, 4, 5],  [],        2,    2,     4,    2,       [0, 2]),     # bounded per pass
    ([3, 9],           [],        5,    None,  2,    1,       [0]),
    ([1, 2, 3, 4],     [2],       2,    None,  3,    2,       [0, 3]),     # held: not retried
    ([1, 2, 3],        [1, 2, 3], 2,    None,  0,    0,       [0]),
]  # fmt: skip


@pytest.mark.parametrize(("ids", "held", "size", "most", "rows", "batches", "afters"), WALKS)
def test_a_walk_moves_forward_by_id_until_a_batch_comes_back_short(
    ids: list[int],
    held: list[int],
    size: int,
    most: int | None,
    rows: int,
    batches: int,
    afters: list[int],
) -> None:
    table = Rows(ids, held)
    assert walk(table.step(size), size, max_batches=most) == Batches(rows, batches)
    assert table.afters == afters


def test_a_walk_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        walk(Rows([1]).step(1), 0)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (TenantStatus.SUSPENDED, "workspace is suspended"),
        (TenantStatus.DELETING, "deletion scheduled"),
    ],
)
def test_a_workspace_a_job_leaves_alone_says_why(status: TenantStatus, reason: str) -> None:
    assert not_worked_reason(status) == reason


# The numbers are shared with processes of the previous release during a deploy and with the
# benchmarks: renumbering one would let two processes hold "the same" lock at once.
LOCK_NUMBERS = {
    LockKey.ASSIGNMENT: 1,
    LockKey.AUDIT_CHAIN: 3,
    LockKey.RETENTION: 5,
    LockKey.ESCALATION: 11,
    LockKey.AUTO_CLOSE: 12,
    LockKey.DELIVERY: 13,
    LockKey.TENANT_MIGRATION: 14,
    LockKey.MIGRATIONS: 7_311_001,
    LockKey.SCHEMA_POOL: 7_311_002,
}


def test_every_lock_key_keeps_its_number() -> None:
    assert {key: int(key) for key in LockKey} == LOCK_NUMBERS


LADDER = [
    # before      after one escalation
    ("low",       "medium"),
    ("medium",    "high"),
    ("high",      "critical"),
    ("critical",  "critical"),
]  # fmt: skip


@pytest.mark.parametrize(("before", "after"), LADDER)
def test_escalation_raises_the_priority_one_level(before: str, after: str) -> None:
    assert next_priority(before) == after


S = TicketStatus
WORKFLOW: list[tuple[TicketStatus, dict[str, object], str | None]] = [
    # current          change                                   refusal
    (S.OPEN,           {"status": "pending"},                   None),
    (S.OPEN,           {"status": "open", "title": "t"},        None),
    (S.OPEN,           {"priority": "high"},                    None),
    (S.PENDING,        {"status": "closed"},                    None),  # auto-close's move
    (S.RESOLVED,       {"status": "pending"},                   "illegal_status_change"),
    (S.CLOSED,         {"status": "open"},                      None),  # reopening
    (S.CLOSED,         {"status": "closed"},                    None),
    (S.CLOSED,         {"status": "resolved"},                  "illegal_status_change"),
    (S.CLOSED,         {"status": "in_progress"},               "illegal_status_change"),
    (S.CLOSED,         {"title": "new"},                        "ticket_closed"),
    (S.CLOSED,         {"status": "open", "title": "new"},      "ticket_closed"),
    (S.CLOSED,         {"escalated": True},                     "ticket_closed"),
    (S.CLOSED,         {"title": None},                         "ticket_closed"),
    (S.IN_PROGRESS,    {"status": None},                        None),
]  # fmt: skip


@pytest.mark.parametrize(("current", "changes", "refusal"), WORKFLOW)
def test_every_change_follows_the_status_workflow(
    current: TicketStatus, changes: dict[str, object], refusal: str | None
) -> None:
    if refusal is None:
        check_change(current, changes)
        return
    with pytest.raises(Conflict) as refused:
        check_change(current, changes)
    assert refused.value.code == refusal
