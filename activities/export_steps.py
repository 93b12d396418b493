"""The export's activities: `resolve_batches` stores what to copy, `copy_batch` copies one batch, `end_export` tidies up."""
import logging

import azure.durable_functions as df

from shared.export.batch_copy import copy_batch as copy_instances
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import BatchOutcome, CopyRequest, ResolvedBatches, ResolveRequest
from shared.export.resolution import resolve_batches as resolve_identifiers
from shared.export.step_session import ExportSession, run_export_step
from shared.export.work_store import WorkStore
from shared.settings import WorkSettings

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
async def resolve_batches(request: dict) -> dict:
    """Resolve the next slice of identifiers into stored batches; not-found identifiers go to errors.log."""
    job = ResolveRequest.from_dict(request)
    resolved = await run_export_step(
        job.operation_id, lambda session: resolve_identifiers(job, session.store, session.work, session.log),
        refused=lambda message: ResolvedBatches(0, 0, job.position, job.continuation, 0, refusal=message))
    logging.info("Export %s resolved %d instances into %d batches; %d identifiers not found%s", job.operation_id,
                 resolved.instances, resolved.batches, resolved.skipped, "; refused" if resolved.refusal else "")
    return resolved.to_dict()


@bp.activity_trigger(input_name="request")
async def copy_batch(request: dict) -> dict:
    """Copy one stored batch to the destination and return its counts and copy mode (or the refusal)."""
    job = CopyRequest.from_dict(request)

    async def step(session: ExportSession) -> BatchOutcome:
        batch = await session.work.load_batch(job.operation_id, job.batch_index)
        copier = InstanceCopier(session.store, session.destination, session.container, job.operation_id,
                                job.copy_mode)
        progress = await copy_instances(batch, copier, session.log, job.copies_in_flight,
                                        admit=session.watch.admit)
        return BatchOutcome(progress.exported, progress.skipped, copier.mode)

    outcome = await run_export_step(job.operation_id, step, refused=lambda message: BatchOutcome(refusal=message))
    logging.info("Export %s copied batch %d: %d exported, %d skipped, mode %s%s", job.operation_id, job.batch_index,
                 outcome.exported, outcome.skipped, outcome.copy_mode, "; refused" if outcome.refusal else "")
    return outcome.to_dict()


@bp.activity_trigger(input_name="operation_id")
async def end_export(operation_id: str) -> None:
    """Delete the operation's working files, its sealed destination with them, so the credential is no longer usable."""
    work = await WorkStore.connect(WorkSettings.from_environment())
    await work.discard(operation_id)
    logging.info("Export %s ended; its working files are deleted", operation_id)
