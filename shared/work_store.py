"""The service's own blob container for each export's working files: its identifiers, its resolved batches, its sealed destination."""
from __future__ import annotations

import asyncio
import json
from typing import List, Sequence

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.export_state import InstanceBatch
from shared.settings import WorkSettings
from shared.storage_clients import blob_service

IDENTIFIERS_PER_PAGE = 1000
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
        try:
            await self._container.delete_blob(f"{operation_id}/destination")
            deleted = 1
        except ResourceNotFoundError:
            deleted = 0
        names = [blob.name async for blob in self._container.list_blobs(name_starts_with=f"{operation_id}/")]
        await _bounded(self._container.delete_blob(name) for name in names)
        return deleted + len(names)
