"""Delivers a completion event once: to a webhook (signed) or an Event Grid topic (access key or managed identity)."""
from __future__ import annotations

import logging
import time
from typing import Dict
from urllib.parse import urlsplit

import aiohttp

from shared.cloud.clients import process_identity
from shared.notification.completion_event import EVENT_CONTENT_TYPE, CompletionEvent, webhook_signature
from shared.settings import EVENT_GRID_SCOPE, NotifySettings

ATTEMPT_SECONDS = 10
_RETRIED_STATUSES = {408, 429}


class DeliveryNotAcceptedError(Exception):
    """The receiver did not take the event this time (5xx, 408, 429, no answer): the delivery is retried."""


async def _headers(event: CompletionEvent, body: bytes, settings: NotifySettings) -> Dict[str, str]:
    headers = {"Content-Type": EVENT_CONTENT_TYPE}
    if settings.secret is not None:
        timestamp = int(time.time())
        headers.update({"webhook-id": event.event_id, "webhook-timestamp": str(timestamp),
                        "webhook-signature": webhook_signature(settings.secret, event.event_id, timestamp, body)})
    if settings.auth == "aeg-sas-key":
        headers["aeg-sas-key"] = settings.key or ""
    elif settings.auth == "identity":
        token = await process_identity(settings.client_id).get_token(EVENT_GRID_SCOPE)
        headers["Authorization"] = f"Bearer {token.token}"
    return headers


async def deliver_event(event: CompletionEvent, settings: NotifySettings) -> bool:
    """POST the event to EXPORT_NOTIFY_URL once (no redirects, 10 s): True when a 2xx accepts it, False for an answer
    no retry would change (3xx, 4xx but 408 and 429); raise DeliveryNotAcceptedError otherwise.

    Logs name the operation, the receiver's host and its answer, never the URL's query (it may hold a key).
    """
    body = event.body()
    host = urlsplit(settings.url or "").netloc
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ATTEMPT_SECONDS)) as session:
            async with session.post(settings.url, data=body, headers=await _headers(event, body, settings),
                                    allow_redirects=False) as response:
                status, reason = response.status, response.reason
    except (aiohttp.ClientError, TimeoutError) as error:
        logging.warning("Export %s: the completion event could not reach %s (%s)", event.operation_id, host,
                        type(error).__name__)
        raise DeliveryNotAcceptedError(f"The receiver at {host} could not be reached ({type(error).__name__}).") \
            from None
    if 200 <= status < 300:
        logging.info("Export %s: completion event %s delivered to %s (%d)", event.operation_id,
                     event.status["status"], host, status)
        return True
    logging.warning("Export %s: %s answered %d %s to the completion event", event.operation_id, host, status, reason)
    if status >= 500 or status in _RETRIED_STATUSES:
        raise DeliveryNotAcceptedError(f"The receiver at {host} answered {status} {reason}.")
    return False
