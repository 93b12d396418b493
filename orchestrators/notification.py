"""Completion events: announced by the orchestration that ends an export, or by `export_notifier` for a canceled one."""
from typing import Any, Dict, Optional

import azure.durable_functions as df

from shared.api.status import describe_operation
from shared.export.checkpoint import ExportCheckpoint
from shared.notification.completion_event import CompletionEvent
from shared.settings import NOTIFY_ATTEMPTS, NOTIFY_FIRST_RETRY_MS
from shared.timestamps import utc_iso

bp = df.Blueprint()
RUNTIME_OF = {"succeeded": "Completed", "failed": "Failed"}


class BackoffRetryOptions(df.RetryOptions):
    """The SDK's retry options plus exponential backoff, in the JSON names the Durable extension reads (the SDK has no
    parameter for them): each wait doubles, up to a minute."""

    def to_json(self) -> Dict[str, Any]:
        """The options as the extension reads them."""
        return {**super().to_json(), "backoffCoefficient": 2, "maxRetryIntervalInMilliseconds": 60_000}


NOTIFY_RETRY = BackoffRetryOptions(first_retry_interval_in_milliseconds=NOTIFY_FIRST_RETRY_MS,
                                   max_number_of_attempts=NOTIFY_ATTEMPTS)


def deliver(context: df.DurableOrchestrationContext, event: CompletionEvent):
    """Run `notify_export` with retries and backoff; "delivered" or "failed" (a failed delivery fails nothing)."""
    try:
        return (yield context.call_activity_with_retry("notify_export", NOTIFY_RETRY, event.to_dict()))
    except Exception:  # the attempts ran out: the activity logged each answer
        return "failed"


def announce_end(context: df.DurableOrchestrationContext, checkpoint: ExportCheckpoint, counts: Dict[str, Any],
                 outcome: str, failure: Optional[str] = None):
    """When the export notifies: publish its outcome (the status answers it from now on), deliver the event, and
    publish whether it was delivered."""
    if not checkpoint.notify:
        return
    moment = context.current_utc_datetime
    body = describe_operation(checkpoint.operation_id, RUNTIME_OF[outcome], checkpoint.to_dict(), counts, failure,
                              None, moment, 2).body
    ended = {**counts, "outcome": outcome, **({"error": body["errors"][0]} if "errors" in body else {})}
    context.set_custom_status({**ended, "notification": "pending"})
    event = CompletionEvent(checkpoint.operation_id, context.new_uuid(), utc_iso(moment), checkpoint.service_url, body)
    delivered = yield from deliver(context, event)
    context.set_custom_status({**ended, "notification": delivered})


@bp.orchestration_trigger(context_name="context")
def export_notifier(context: df.DurableOrchestrationContext):
    """Deliver the completion event of a canceled export, whose own orchestration was terminated."""
    delivered = yield from deliver(context, CompletionEvent.from_dict(context.get_input(expected_type=dict)))
    return delivered
