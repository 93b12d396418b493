"""One copy activity's work: a stored batch copied once, its manifest block staged, its outcome recorded."""
from __future__ import annotations

import asyncio
import logging

from shared.deid.deidentification import Deidentification
from shared.destination.manifest import stage_manifest_block
from shared.export.batch_copy import copy_batch
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import BatchOutcome, CopyRequest
from shared.export.step_session import ExportSession
from shared.log_setup import detail


async def copy_stored_batch(job: CopyRequest, session: ExportSession) -> BatchOutcome:
    """Copy batch `job.batch_index`, or return what a finished earlier attempt returned.

    A retried attempt does not copy again what an earlier one wrote, and its counts replace, never add to, the
    earlier attempt's: the outcome is recorded only after the manifest block is staged and errors.log appended.
    """
    work, operation_id, index = session.work, job.operation_id, job.batch_index
    # The `started` marker and the batch at once; only a retried attempt (the marker was there) asks whether an
    # earlier one finished: a finished attempt's outcome makes the batch moot.
    retried, batch = await asyncio.gather(work.start_batch(operation_id, index), work.load_batch(operation_id, index))
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
    await work.save_batch_outcome(operation_id, index, outcome.to_dict())
    return outcome
