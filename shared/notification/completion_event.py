"""The completion event of an export: a CloudEvents 1.0 structured JSON body, signed as Standard Webhooks says."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Dict

from shared.payload import Payload

EVENT_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
EVENT_TYPE_PREFIX = "dicom.export."
ENDED_STATUSES = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class CompletionEvent(Payload):
    """Input of `notify_export`: the event's id (the same on every delivery attempt), time, source (the service's base
    URL) and the v2 operation status body it carries."""

    operation_id: str
    event_id: str
    time: str
    source: str
    status: Dict[str, Any]

    def body(self) -> bytes:
        """The CloudEvents 1.0 structured JSON: type `dicom.export.<status>`, subject `/operations/<id>`, data the
        status body."""
        return json.dumps({
            "specversion": "1.0", "type": f"{EVENT_TYPE_PREFIX}{self.status['status']}",
            "source": self.source or "/", "subject": f"/operations/{self.operation_id}", "id": self.event_id,
            "time": self.time, "datacontenttype": "application/json", "data": self.status,
        }, separators=(",", ":")).encode()


def webhook_signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under `secret`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
