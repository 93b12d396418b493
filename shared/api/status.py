"""Maps a durable orchestration's status onto the DICOM operation status body."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional

from shared.destination.manifest import MANIFEST_NAME
from shared.errors import ExportFailedError
from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import Progress
from shared.timestamps import utc_iso

INTERNAL_FAILURE = ("The export stopped because of repeated storage faults or an internal error. "
                    "Start it again; if it fails again, give the operator this operation's id.")
_RUNTIME_TO_STATUS = {
    "Pending": "notStarted",
    "Running": "running",
    "ContinuedAsNew": "running",
    "Suspended": "paused",
    "Completed": "succeeded",
    "Failed": "failed",
    "Terminated": "canceled",
    "Canceled": "canceled",
}
IN_PROGRESS = {"notStarted", "running", "paused"}


def failure_message(output: Any) -> str:
    """The caller's message inside a failed orchestration's output, or a generic one for unexpected failures."""
    text = output if isinstance(output, str) else ""
    start = text.find(ExportFailedError.PREFIX)
    if start < 0:
        return INTERNAL_FAILURE
    return text[start + len(ExportFailedError.PREFIX):].split("\n", 1)[0].strip()


def manifest_href(error_href: str) -> str:
    """The manifest's URL beside errors.log in the destination (no query string, so no SAS)."""
    return f"{error_href.rsplit('/', 1)[0]}/{MANIFEST_NAME}"


@dataclass(frozen=True)
class OperationState:
    """The HTTP status code and body of `GET /v{n}/operations/{id}`."""

    status_code: int
    body: Dict[str, Any]

    @property
    def in_progress(self) -> bool:
        """Whether the caller should keep polling."""
        return self.status_code == 202


def _json_value(value: Any) -> Any:
    """The durable layer reports Python inputs as JSON text; other values arrive already parsed."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def checkpoint_of(orchestration_input: Any) -> Optional[ExportCheckpoint]:
    """The export's checkpoint from its orchestration's input (JSON text or already parsed), if it has one."""
    value = _json_value(orchestration_input)
    return ExportCheckpoint.from_dict(value) if isinstance(value, dict) else None


def describe_operation(operation_id: str, runtime_status: str, checkpoint: Any,
                       custom_status: Any, output: Any, created: Optional[datetime],
                       last_updated: Optional[datetime], api_version: int,
                       notification: Optional[str] = None) -> OperationState:
    """Build the operation body: v1 says `completed` where v2 says `succeeded`; counts come from custom status.

    An orchestration still delivering its completion event has published the export's outcome in its custom status:
    the export has ended, so that outcome is the status. `notification` (else the custom status's) says whether the
    event was delivered.
    """
    state, custom_status = checkpoint_of(checkpoint), _json_value(custom_status)
    published = custom_status if isinstance(custom_status, dict) else {}
    status = _RUNTIME_TO_STATUS.get(runtime_status, "unknown")
    if status in IN_PROGRESS and published.get("outcome") in ("succeeded", "failed"):
        status = published["outcome"]
    if status == "succeeded" and api_version == 1:
        status = "completed"
    progress = Progress.from_dict(custom_status) if isinstance(custom_status, dict) \
        else (state.progress if state else Progress())
    body: Dict[str, Any] = {
        "operationId": operation_id,
        "type": "export",
        "createdTime": state.created_time if state else utc_iso(created),
        "lastUpdatedTime": utc_iso(last_updated or created),
        "status": status,
        **({"percentComplete": custom_status["percentComplete"]}
           if isinstance(custom_status, dict) and isinstance(custom_status.get("percentComplete"), int) else {}),
        "results": {"exported": progress.exported, "skipped": progress.skipped,
                    "errorHref": state.error_href if state else None,
                    "manifestHref": manifest_href(state.error_href) if state else None},
    }
    if status == "failed":
        body["errors"] = [failure_message(output) if runtime_status == "Failed" else published.get("error", "")]
    notification = notification or published.get("notification")
    if notification:
        body["notification"] = notification
    return OperationState(202 if status in IN_PROGRESS else 200, body)
