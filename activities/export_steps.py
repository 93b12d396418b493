"""The export's activities: `resolve_batches` stores what to copy, `copy_batch` copies one batch, `end_export` tidies up."""
import logging
import time
from typing import Optional

import azure.durable_functions as df

from shared.export.copy_step import run_copy_step
from shared.export.ending import end_export as finish_export
from shared.export.payloads import CopyRequest, ResolvedBatches, ResolveRequest
from shared.export.resolution import resolve_batches as resolve_identifiers
from shared.export.step_session import run_export_step

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
async def resolve_batches(request: dict) -> dict:
    """Resolve the next slice of identifiers into stored batches; not-found identifiers go to errors.log."""
    job = ResolveRequest.from_dict(request)
    started = time.monotonic()
    resolved = await run_export_step(
        job.operation_id, lambda session: resolve_identifiers(job, session.store, session.work, session.log),
        refused=lambda message: ResolvedBatches(0, 0, job.position, job.continuation, 0, refusal=message),
        partition=job.partition)
    logging.info("Export %s resolved %d instances into %d batches in %.1f s; %d skipped%s", job.operation_id,
                 resolved.instances, resolved.batches, time.monotonic() - started, resolved.skipped,
                 "; refused" if resolved.refusal else "")
    return resolved.to_dict()


@bp.activity_trigger(input_name="request")
async def copy_batch(request: dict) -> dict:
    """Copy one stored batch to the destination and return its counts and copy mode (or the refusal)."""
    job = CopyRequest.from_dict(request)
    started = time.monotonic()
    outcome = await run_copy_step(job)
    logging.info("Export %s copied batch %d in %.1f s: %d exported, %d skipped, mode %s%s", job.operation_id,
                 job.batch_index, time.monotonic() - started, outcome.exported, outcome.skipped, outcome.copy_mode,
                 "; refused" if outcome.refusal else "")
    return outcome.to_dict()


@bp.activity_trigger(input_name="operation_id")
async def end_export(operation_id: str) -> Optional[str]:
    """Commit the manifest, then delete the working files (the sealed destination with them); a refusal fails it."""
    refusal = await finish_export(operation_id)
    logging.info("Export %s ended; its working files are deleted%s", operation_id,
                 "; the destination refused the manifest" if refusal else "")
    return refusal
