"""The export's two activities: `resolve_wave` lists what to copy next, `copy_batch` copies one batch."""
import logging

import azure.durable_functions as df

from shared.batch_copy import copy_batch as copy_instances
from shared.export_session import run_export_step
from shared.export_state import BatchOutcome, CopyRequest, ResolvedWave, ResolveRequest
from shared.resolution import resolve_wave as resolve_identifiers

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
async def resolve_wave(request: dict) -> dict:
    """Resolve the next wave of identifiers into batches; not-found identifiers go to errors.log."""
    job = ResolveRequest.from_dict(request)
    wave = await run_export_step(
        job.operation_id, job.destination,
        lambda session: resolve_identifiers(job, session.store, session.log),
        refused=lambda message: ResolvedWave((), 0, job.continuation, 0, refusal=message))
    logging.info("Export %s resolved %d batches from %d identifiers; %d not found%s", job.operation_id,
                 len(wave.batches), wave.consumed, wave.skipped, "; destination refused" if wave.refusal else "")
    return wave.to_dict()


@bp.activity_trigger(input_name="request")
async def copy_batch(request: dict) -> dict:
    """Copy one batch to the destination and return its counts (or the destination's refusal)."""
    job = CopyRequest.from_dict(request)

    async def step(session) -> BatchOutcome:
        progress = await copy_instances(job.batch, session.store, session.destination, session.container,
                                        job.operation_id, session.log, job.copies_in_flight)
        return BatchOutcome(progress.exported, progress.skipped)

    outcome = await run_export_step(job.operation_id, job.destination, step,
                                    refused=lambda message: BatchOutcome(refusal=message))
    logging.info("Export %s copied a batch: %d exported, %d skipped%s", job.operation_id, outcome.exported,
                 outcome.skipped, "; destination refused" if outcome.refusal else "")
    return outcome.to_dict()
