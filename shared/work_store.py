"""The service's own blob container for each export's working files: its identifiers, its resolved batches, its sealed destination."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import List, Optional, Sequence

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, ContainerClient

from shared.export_state import InstanceBatch
from shared.settings import WorkSettings
from shared.storage_clients import blob_service

IDENTIFIERS_PER_PAGE = 1000
REVOCATION_POLL_SECONDS = 0.25
STEP_HEARTBEAT = timedelta(seconds=2)
STEP_PRESUMED_DEAD = timedelta(seconds=15)
DRAIN_LIMIT_SECONDS = 60
_WRITES_IN_FLIGHT = 16
_created_containers: set = set()


class OperationRevokedError(Exception):
    """The operation's sealed destination is gone: it ended or was canceled, so nothing more may be written."""


async def _bounded(jobs, limit: int = _WRITES_IN_FLIGHT) -> list:
    semaphore = asyncio.Semaphore(limit)

    async def run(job):
        async with semaphore:
            return await job
    return await asyncio.gather(*(run(job) for job in jobs))


class WorkStore:
    """`<operation id>/identifiers/<page>.json`, `<operation id>/batches/<n>.json` and `<operation id>/destination`."""

    def __init__(self, container: ContainerClient):
        self._container = container

    @classmethod
    async def connect(cls, settings: WorkSettings) -> "WorkStore":
        """The work container on the process's shared client, created the first time this process uses it."""
        container = blob_service(settings).get_container_client(settings.container)
        if settings not in _created_containers:
            try:
                await container.create_container()
            except ResourceExistsError:
                pass
            _created_containers.add(settings)
        return cls(container)

    async def _write(self, name: str, data: bytes) -> None:
        await self._container.get_blob_client(name).upload_blob(data, overwrite=True)

    async def _read(self, name: str) -> bytes:
        return await (await self._container.get_blob_client(name).download_blob()).readall()

    async def save_identifiers(self, operation_id: str, identifiers: Sequence[str]) -> None:
        """Store the export's identifiers in pages of 1,000."""
        pages = range(0, len(identifiers), IDENTIFIERS_PER_PAGE)
        await _bounded(self._write(f"{operation_id}/identifiers/{start // IDENTIFIERS_PER_PAGE:06d}.json",
                                   json.dumps(list(identifiers[start:start + IDENTIFIERS_PER_PAGE])).encode())
                       for start in pages)

    async def load_identifiers(self, operation_id: str, start: int, count: int) -> List[str]:
        """Identifiers `start` to `start + count` (fewer at the end of the list)."""
        first, last = start // IDENTIFIERS_PER_PAGE, (start + count - 1) // IDENTIFIERS_PER_PAGE
        pages = await _bounded(self._read(f"{operation_id}/identifiers/{page:06d}.json")
                               for page in range(first, last + 1))
        values = [value for page in pages for value in json.loads(page)]
        offset = start - first * IDENTIFIERS_PER_PAGE
        return values[offset:offset + count]

    async def save_batches(self, operation_id: str, first_index: int, batches: Sequence[InstanceBatch]) -> None:
        """Store resolved batches under consecutive numbers from `first_index`."""
        await _bounded(self._write(f"{operation_id}/batches/{first_index + i:08d}.json",
                                   json.dumps(batch.to_dict()).encode()) for i, batch in enumerate(batches))

    async def load_batch(self, operation_id: str, index: int) -> InstanceBatch:
        """The batch stored under number `index`."""
        return InstanceBatch.from_dict(json.loads(await self._read(f"{operation_id}/batches/{index:08d}.json")))

    async def save_sealed_destination(self, operation_id: str, sealed: str) -> None:
        """Keep the sealed destination where only this service reads it, out of every durable payload."""
        await self._write(f"{operation_id}/destination", sealed.encode())

    async def load_sealed_destination(self, operation_id: str) -> str:
        """The sealed destination; raise OperationRevokedError once the operation has ended."""
        try:
            return (await self._read(f"{operation_id}/destination")).decode()
        except ResourceNotFoundError:
            raise OperationRevokedError(f"Export {operation_id} has ended; its destination is revoked.") from None

    async def is_revoked(self, operation_id: str) -> bool:
        """Whether the operation's sealed destination is gone."""
        return not await self._container.get_blob_client(f"{operation_id}/destination").exists()

    async def discard(self, operation_id: str) -> int:
        """Delete the operation's working files, the sealed destination first; return how many were deleted."""
        await self.revoke(operation_id)
        names = [blob.name async for blob in self._container.list_blobs(name_starts_with=f"{operation_id}/")]
        await _bounded(self.delete_if_present(name) for name in names)
        return len(names)

    async def delete_if_present(self, name: str) -> None:
        """Delete one working file; one already gone is fine."""
        try:
            await self._container.delete_blob(name)
        except ResourceNotFoundError:
            pass

    async def withdraw(self, operation_id: str) -> None:
        """Revoke the operation's destination, wait until no running step can still write, then tidy up.

        Steps register under `<operation id>/active/` before unsealing and stop starting writes once they see the
        revocation; in-flight writes finish before a step leaves. A step silent for 15 s is presumed dead.
        """
        await self.revoke(operation_id)
        deadline = asyncio.get_running_loop().time() + DRAIN_LIMIT_SECONDS
        while await self._live_steps(operation_id) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(REVOCATION_POLL_SECONDS / 2)
        await self.discard(operation_id)

    async def revoke(self, operation_id: str) -> None:
        """Delete the sealed destination, so no step can open the destination again."""
        await self.delete_if_present(f"{operation_id}/destination")

    async def _live_steps(self, operation_id: str) -> int:
        since = datetime.now(timezone.utc) - STEP_PRESUMED_DEAD
        return len([blob async for blob in self._container.list_blobs(name_starts_with=f"{operation_id}/active/")
                    if blob.last_modified >= since])

    def step_marker(self, operation_id: str) -> BlobClient:
        """A new `<operation id>/active/<id>` marker for one running step."""
        return self._container.get_blob_client(f"{operation_id}/active/{uuid.uuid4().hex}")

    def watch(self, operation_id: str) -> "StepWatch":
        """A registration of one running step that notices when the operation is revoked."""
        return StepWatch(self, operation_id)


class StepWatch:
    """Marks a step as running under `<operation id>/active/<id>` and polls for the operation's revocation."""

    def __init__(self, work: WorkStore, operation_id: str):
        self._work = work
        self._operation_id = operation_id
        self._marker = work.step_marker(operation_id)
        self._poller: Optional[asyncio.Task] = None
        self.revoked = False

    async def __aenter__(self) -> "StepWatch":
        await self._marker.upload_blob(b"", overwrite=True)
        self._poller = asyncio.ensure_future(self._poll())
        return self

    async def _poll(self) -> None:
        beat = asyncio.get_running_loop().time()
        while not self.revoked:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            self.revoked = await self._work.is_revoked(self._operation_id)
            if asyncio.get_running_loop().time() - beat > STEP_HEARTBEAT.total_seconds():
                await self._marker.upload_blob(b"", overwrite=True)
                beat = asyncio.get_running_loop().time()

    async def __aexit__(self, *exc_info) -> None:
        self._poller.cancel()
        await asyncio.gather(self._poller, return_exceptions=True)
        await self._work.delete_if_present(self._marker.blob_name)
