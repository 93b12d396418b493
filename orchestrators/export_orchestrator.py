"""The export orchestration: each generation resolves ahead while copying the next batches, then continues as new."""
from typing import List, Optional, Tuple

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from orchestrators.notification import announce_end
from shared.errors import ExportFailedError
from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import BatchOutcome, ResolvedBatches
from shared.settings import ACTIVITY_ATTEMPTS, ACTIVITY_FIRST_RETRY_MS

bp = df.Blueprint()
ACTIVITY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=ACTIVITY_FIRST_RETRY_MS,
                                 max_number_of_attempts=ACTIVITY_ATTEMPTS)


def _advance(checkpoint: ExportCheckpoint, resolving: bool, results: List[Optional[dict]]
             ) -> Tuple[ExportCheckpoint, Optional[str]]:
    """The checkpoint after this generation's finished activities (None: failed), and a refusal among them."""
    resolved = ResolvedBatches.from_dict(results[0]) if resolving and results[0] else None
    outcomes = [BatchOutcome.from_dict(result) for result in results[int(resolving):] if result]
    refusal = (resolved.refusal if resolved else None) or next((o.refusal for o in outcomes if o.refusal), None)
    return checkpoint.advance(resolved, outcomes), refusal


@bp.orchestration_trigger(context_name="context")
def export_orchestrator(context: df.DurableOrchestrationContext):
    """One generation = at most one resolve_batches and `batches in flight` copy_batch calls (then end_export once,
    and notify_export when the export notifies).

    History per generation is at most 10 + 4 × batches in flight events (one episode per completion), plus 8 per
    activity retry, whatever the export's size: identifiers and resolved batches live in the work container.
    """
    checkpoint = ExportCheckpoint.from_dict(context.get_input(expected_type=dict))
    context.set_custom_status(checkpoint.status())
    resolving = not checkpoint.resolved
    tasks = [context.call_activity_with_retry("resolve_batches", ACTIVITY_RETRY, checkpoint.resolve_request().to_dict())
             ] if resolving else []
    tasks += [context.call_activity_with_retry("copy_batch", ACTIVITY_RETRY, checkpoint.copy_request(i).to_dict())
              for i in checkpoint.batches_to_copy()]
    try:
        results = (yield context.task_all(tasks)) if tasks else []
    except Exception as error:
        pending = [task for task in tasks if not task.is_completed]
        while pending:  # task_all fails at the first failure; the others settle before end_export deletes their files
            yield context.task_any(pending)
            pending = [task for task in pending if not task.is_completed]
        settled, _ = _advance(checkpoint, resolving, [t.result if t.state is TaskState.SUCCEEDED else None
                                                      for t in tasks])  # what did finish counts, as its files stay
        context.set_custom_status(settled.status())
        yield context.call_activity_with_retry("end_export", ACTIVITY_RETRY, checkpoint.operation_id)
        yield from announce_end(context, settled, settled.status(), "failed", str(error))
        raise
    following, refusal = _advance(checkpoint, resolving, results)
    context.set_custom_status(following.status())
    if refusal or following.finished:  # end_export commits the manifest: a destination refusing it fails the export
        ended = yield context.call_activity_with_retry("end_export", ACTIVITY_RETRY, checkpoint.operation_id)
        refusal = refusal or ended
        yield from announce_end(context, following, following.status(), "failed" if refusal else "succeeded",
                                str(ExportFailedError(refusal)) if refusal else None)
    if refusal:
        raise ExportFailedError(refusal)
    if following.finished:
        return {**following.status(), "copyMode": following.copy_mode}
    context.continue_as_new(following.to_dict())
