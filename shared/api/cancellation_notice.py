"""The completion event of a canceled export: its orchestration is terminated, so `export_notifier` delivers it."""
from __future__ import annotations

import logging
import uuid
from typing import Any, Dict, Optional

from shared.export.checkpoint import ExportCheckpoint
from shared.notification.completion_event import CompletionEvent
from shared.timestamps import utc_iso

NOTIFIER = "export_notifier"


def notifier_id(operation_id: str) -> str:
    """The instance id of the orchestration that delivers a canceled export's event (never an operation id)."""
    return f"{operation_id}-notification"


async def announce_cancellation(client: Any, checkpoint: ExportCheckpoint, canceled: Dict[str, Any]) -> str:
    """Start `export_notifier` with the event carrying `canceled` (the v2 status body); "pending" once it is queued,
    "failed" if the Durable extension would not start it."""
    event = CompletionEvent(checkpoint.operation_id, uuid.uuid4().hex, utc_iso(), checkpoint.service_url, canceled)
    try:
        await client.start_new(NOTIFIER, notifier_id(checkpoint.operation_id), event.to_dict())
    except Exception as error:  # the SDK raises bare Exception for the extension's refusals
        logging.warning("Export %s: the completion event of its cancellation was not queued (%s)",
                        checkpoint.operation_id, type(error).__name__)
        return "failed"
    return "pending"


async def cancellation_notice(client: Any, operation_id: str) -> Optional[str]:
    """How a canceled export's event fared: "delivered", "failed", "pending", or None if none was announced."""
    status = await client.get_status(notifier_id(operation_id))
    if not status or status.name != NOTIFIER:
        return None
    runtime = status.runtime_status.value
    if runtime == "Completed":
        return status.output if status.output in ("delivered", "failed") else "failed"
    return "failed" if runtime in ("Failed", "Terminated", "Canceled") else "pending"
