"""Sweeps away the work containers that ended or vanished operations left behind, after a grace period."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Optional

from shared.export.work_store import WorkStore
from shared.settings import WorkSettings

SWEEP_GRACE = timedelta(hours=1)
ENDED_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
# The durable runtime status of an operation ("Running", "Completed", …), or None when no such operation exists.
StatusLookup = Callable[[str], Awaitable[Optional[str]]]


@dataclass(frozen=True)
class SweepOutcome:
    """How many work containers a sweep looked at and how many it deleted."""

    examined: int = 0
    deleted: int = 0


async def sweep_orphaned_work(runtime_status: StatusLookup, now: Optional[datetime] = None,
                              grace: Optional[timedelta] = None) -> SweepOutcome:
    """Delete each work container whose operation has ended or does not exist, and that nothing has written to for
    `grace` (SWEEP_GRACE, 1 hour).

    The grace covers a start in progress (the container exists before its orchestration) and a cancel draining its
    steps (a step writes its marker when it starts and ends, and runs at most host.json's functionTimeout, 30
    minutes). An operation still pending or running keeps its container however old it is.
    """
    now = now or datetime.now(timezone.utc)
    cutoff = now - (SWEEP_GRACE if grace is None else grace)
    work = await WorkStore.connect(WorkSettings.from_environment())
    examined = deleted = 0
    async for operation_id, created in work.operations():
        examined += 1
        if created > cutoff:
            continue
        status = await runtime_status(operation_id)
        if status is not None and status not in ENDED_STATUSES:
            continue
        last_written = await work.last_written(operation_id, created)
        if last_written is None or last_written > cutoff:
            continue
        await work.discard(operation_id)
        deleted += 1
        logging.info("Export %s: deleted the work container it left behind (%s)", operation_id,
                     status or "no such operation")
    return SweepOutcome(examined, deleted)
