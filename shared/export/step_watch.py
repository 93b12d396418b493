"""Registers a running export step in the working files and watches for its operation's revocation."""
from __future__ import annotations

import asyncio
from typing import Optional

from azure.core.exceptions import ResourceNotFoundError

from shared.export.work_store import (
    REVOCATION_POLL_SECONDS,
    STEP_ENDED,
    STEP_HEARTBEAT,
    STEP_RUNNING,
    STEP_STATE,
    OperationRevokedError,
    WorkStore,
)


class StepWatch:
    """Marks a step as running under `active/<id>` and polls for the operation's revocation.

    The marker is an empty append blob whose metadata says running or ended, and heartbeats rewrite the metadata:
    no step writes blob content, so none leaves stale content behind for the storage to collect.
    """

    def __init__(self, work: WorkStore, operation_id: str):
        self._work = work
        self._operation_id = operation_id
        self._marker = work.step_marker(operation_id)
        self._poller: Optional[asyncio.Task] = None
        self.revoked = False

    async def __aenter__(self) -> "StepWatch":
        try:
            await self._marker.create_append_blob(metadata={STEP_STATE: STEP_RUNNING})
        except ResourceNotFoundError:  # the work container is gone: the operation has ended
            raise OperationRevokedError(f"Export {self._operation_id} has ended; its destination is revoked.") from None
        self._poller = asyncio.ensure_future(self._poll())
        return self

    async def _poll(self) -> None:
        beat = asyncio.get_running_loop().time()
        while not self.revoked:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            self.revoked = await self._work.is_revoked(self._operation_id)
            if not self.revoked and asyncio.get_running_loop().time() - beat > STEP_HEARTBEAT.total_seconds():
                await self._marker.set_blob_metadata({STEP_STATE: STEP_RUNNING})
                beat = asyncio.get_running_loop().time()

    async def __aexit__(self, *exc_info) -> None:
        """Stop polling and mark the step ended in its marker's metadata."""
        self._poller.cancel()
        await asyncio.gather(self._poller, return_exceptions=True)
        try:
            await self._marker.set_blob_metadata({STEP_STATE: STEP_ENDED})
        except ResourceNotFoundError:
            pass
