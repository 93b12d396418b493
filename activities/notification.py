"""The activity that delivers an export's completion event: `notify_export`, retried with backoff by its caller."""
import logging

import azure.durable_functions as df

from shared.notification.completion_event import CompletionEvent
from shared.notification.delivery import deliver_event
from shared.settings import NotifySettings

bp = df.Blueprint()


@bp.activity_trigger(input_name="event")
async def notify_export(event: dict) -> str:
    """POST the completion event once: "delivered", or "failed" when the receiver refused it for good; a fault worth
    another try raises, so the orchestration's retry policy tries again."""
    completion = CompletionEvent.from_dict(event)
    settings = NotifySettings.from_environment()
    if settings.url is None:
        logging.warning("Export %s: EXPORT_NOTIFY_URL is no longer set; the completion event is not sent",
                        completion.operation_id)
        return "failed"
    return "delivered" if await deliver_event(completion, settings) else "failed"
