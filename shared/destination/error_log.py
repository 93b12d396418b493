"""The operation's `errors.log`: an append blob of JSON lines, written in few large appends."""
from __future__ import annotations

import json
from datetime import datetime
from typing import List, Optional

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import ContainerClient

from shared.cloud.storage_errors import error_code
from shared.destination.blob_destination import error_log_blob_name
from shared.log_setup import detail
from shared.timestamps import utc_iso

MAX_APPEND_BYTES = 4 * 1024 * 1024
IMPOSSIBLE_ETAG = '"0x0"'  # storage never gives a blob this ETag


def error_line(identifier: str, error: str, when: Optional[datetime] = None) -> bytes:
    """One log line: `{"timestamp", "identifier", "error"}` in JSON with a newline."""
    return (json.dumps({"timestamp": utc_iso(when), "identifier": identifier, "error": error}) + "\n").encode()


async def create_error_log(container: ContainerClient, operation_id: str) -> None:
    """Create the operation's empty append blob; this is also the check that the container takes writes."""
    await container.get_blob_client(error_log_blob_name(operation_id)).create_append_blob()


async def probe_error_log(container: ContainerClient, operation_id: str) -> None:
    """Send the request that creates the error log, conditional on an ETag no blob has: storage checks that the
    container exists and that the credentials may write before it refuses the condition (412), so the check writes
    nothing. A missing container or a refusal raises as `create_error_log` would."""
    blob = container.get_blob_client(error_log_blob_name(operation_id))
    try:
        await blob.create_append_blob(etag=IMPOSSIBLE_ETAG, match_condition=MatchConditions.IfNotModified)
    except HttpResponseError as error:
        if error.status_code != 412 and error_code(error) != "BlobNotFound":
            raise


class ErrorLog:
    """Collects an activity's error lines and appends them at once when flushed."""

    def __init__(self, container: ContainerClient, operation_id: str):
        self._blob = container.get_blob_client(error_log_blob_name(operation_id))
        self._operation_id = operation_id
        self._lines: List[bytes] = []

    def add(self, identifier: str, error: str) -> None:
        """Queue one line for the next flush (and log it with EXPORT_DETAILED_LOGS, as it names the identifier)."""
        detail.info("Export %s skipped %s: %s", self._operation_id, identifier, error)
        self._lines.append(error_line(identifier, error))

    async def flush(self) -> None:
        """Append the queued lines in blocks of at most 4 MiB, then forget them."""
        block = b""
        for line in self._lines:
            if block and len(block) + len(line) > MAX_APPEND_BYTES:
                await self._blob.append_block(block)
                block = b""
            block += line
        if block:
            await self._blob.append_block(block)
        self._lines = []
