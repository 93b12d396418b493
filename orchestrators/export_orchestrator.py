"""The export orchestration: one generation resolves a wave, copies its batches in parallel, then continues as new."""
import azure.durable_functions as df

from shared.export_state import BatchOutcome, ExportCheckpoint, Progress, ResolvedWave
from shared.operation_status import ExportFailedError
from shared.settings import ACTIVITY_ATTEMPTS, ACTIVITY_FIRST_RETRY_MS

bp = df.Blueprint()
ACTIVITY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=ACTIVITY_FIRST_RETRY_MS,
                                 max_number_of_attempts=ACTIVITY_ATTEMPTS)


@bp.orchestration_trigger(context_name="context")
def export_orchestrator(context: df.DurableOrchestrationContext):
    """Export one wave per generation; history holds at most 1 + batches-in-flight activities (plus retries)."""
    checkpoint = ExportCheckpoint.from_dict(context.get_input(expected_type=dict))
    context.set_custom_status(checkpoint.progress.to_dict())
    wave = ResolvedWave.from_dict((yield context.call_activity_with_retry(
        "resolve_wave", ACTIVITY_RETRY, checkpoint.resolve_request().to_dict())))
    outcomes = []
    if wave.batches and not wave.refusal:
        results = yield context.task_all([
            context.call_activity_with_retry("copy_batch", ACTIVITY_RETRY, checkpoint.copy_request(b).to_dict())
            for b in wave.batches])
        outcomes = [BatchOutcome.from_dict(result) for result in results]
    progress = sum((o.progress for o in outcomes), checkpoint.progress + Progress(skipped=wave.skipped))
    context.set_custom_status(progress.to_dict())
    refusal = wave.refusal or next((o.refusal for o in outcomes if o.refusal), None)
    if refusal:
        raise ExportFailedError(refusal)
    following = checkpoint.advance(wave, progress)
    if following.finished:
        return progress.to_dict()
    context.continue_as_new(following.to_dict())
