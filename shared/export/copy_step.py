"""One copy activity's work: a stored batch copied once, its manifest block staged, its outcome recorded."""
from __future__ import annotations

import asyncio
import logging
from typing import Tuple

from shared.deid.deidentification import Deidentification
from shared.destination.manifest import stage_manifest_block
from shared.export.batch_copy import copy_batch
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import BatchOutcome, CopyRequest, InstanceBatch
from shared.export.step_session import ExportSession, run_export_step
from shared.export.work_store import WorkStore
from shared.log_setup import detail


async def run_copy_step(job: CopyRequest) -> BatchOutcome:
    """Copy one stored batch as an export step (see `run_export_step`); a refusal is the outcome's."""
    return await run_export_step(job.operation_id, lambda session: copy_stored_batch(job, session),
                                 refused=lambda message: BatchOutcome(refusal=message), partition=job.partition,
                                 reads=lambda work: open_batch(work, job))


async def open_batch(work: WorkStore, job: CopyRequest) -> Tuple[bool, InstanceBatch]:
    """A copy step's opening reads, at once: its `started` marker (True when an earlier attempt left it) and its
    batch."""
    return tuple(await asyncio.gather(work.start_batch(job.operation_id, job.batch_index),
                                      work.load_batch(job.operation_id, job.batch_index)))


async def copy_stored_batch(job: CopyRequest, session: ExportSession) -> BatchOutcome:
    """Copy batch `job.batch_index` (its opening reads in `session.read`, see `open_batch`), or return what a
    finished earlier attempt returned.

    A retried attempt does not copy again what an earlier one wrote, and its counts replace, never add to, the
    earlier attempt's: the outcome is recorded only after the manifest block is staged and errors.log appended (at
    the step's close).
    """
    work, operation_id, index = session.work, job.operation_id, job.batch_index
    # Only a retried attempt (the `started` marker was there) asks whether an earlier one finished: a finished
    # attempt's outcome makes the batch moot.
    retried, batch = session.read
    finished = await work.load_batch_outcome(operation_id, index) if retried else None
    if finished is not None:
        return BatchOutcome.from_dict(finished)
    copier = InstanceCopier(session.store, session.destination, session.container, operation_id, job.copy_mode,
                            Deidentification.of_export(job.deidentify))
    copied = await copy_batch(batch, copier, session.log, job.copies_in_flight, admit=session.watch.admit,
                              reuse=copier.already_copied if retried else None)
    if detail.isEnabledFor(logging.INFO):  # a manifest line names the instance, its path, size and MD5
        for line in copied.manifest_lines:
            detail.info("Export %s batch %d copied %s", operation_id, index, line.decode().strip())
    async with session.destination.guard():
        await asyncio.gather(stage_manifest_block(session.container, operation_id, index, copied.manifest_lines),
                             session.log.flush())
    outcome = BatchOutcome(copied.progress.exported, copied.progress.skipped, copier.mode)
    session.record_at_close(lambda: work.save_batch_outcome(operation_id, index, outcome.to_dict()))
    return outcome
