"""The service's own storage for each export's working files: identifiers, batches, outcomes, sealed destination."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from shared.cloud.clients import blob_service
from shared.cloud.storage_errors import status_text
from shared.errors import ExportFailedError
from shared.export.payloads import InstanceBatch
from shared.settings import WorkSettings

IDENTIFIERS_PER_PAGE = 1000
_WRITES_IN_FLIGHT = 16
# Requests the cancel protocol repeats on its own schedule: no SDK retries (backoff from 15 s), short timeouts.
QUICK = {"retry_total": 0, "connection_timeout": 2, "read_timeout": 2}
DESTINATION = "destination"
ACTIVE_STEPS = "active/"
STEP_STATE, STEP_RUNNING, STEP_ENDED = "step", "running", "ended"
OPERATION_ID = re.compile(r"^[0-9a-f]{32}$")


class OwnStorageError(ExportFailedError):
    """The service's own storage kept failing; the activity is retried, then the export fails saying so."""


class OperationRevokedError(Exception):
    """The operation's sealed destination is gone: it ended or was canceled, so nothing more may be written."""


async def _bounded(jobs, limit: int = _WRITES_IN_FLIGHT) -> list:
    semaphore = asyncio.Semaphore(limit)

    async def run(job):
        async with semaphore:
            return await job
    return await asyncio.gather(*(run(job) for job in jobs))


def work_container_name(prefix: str, operation_id: str) -> str:
    """The container holding one operation's working files: `<prefix>-<operation id>`."""
    return f"{prefix}-{operation_id}"


def is_operation_id(text: str) -> bool:
    """Whether `text` has the shape of an operation id: 32 lowercase hexadecimal digits."""
    return OPERATION_ID.match(text) is not None


class WorkStore:
    """Each operation's working files, in a container of its own (`<prefix>-<operation id>`), deleted in one call:
    `identifiers/<page>.json`, `batches/<n>.json`, `started/<n>` and `outcomes/<n>.json` (batch attempts and
    results), `destination` and the running steps' `active/<id>` markers."""

    def __init__(self, service: BlobServiceClient, prefix: str):
        self._service = service
        self._prefix = prefix

    @classmethod
    async def connect(cls, settings: WorkSettings) -> "WorkStore":
        """The work containers on the process's shared client for the service's own storage."""
        return cls(blob_service(settings), settings.container)

    def _container(self, operation_id: str) -> ContainerClient:
        return self._service.get_container_client(work_container_name(self._prefix, operation_id))

    def _blob(self, operation_id: str, name: str) -> BlobClient:
        return self._container(operation_id).get_blob_client(name)

    @asynccontextmanager
    async def _own_storage(self) -> AsyncIterator[None]:
        """Faults of the service's own storage that outlasted the SDK's retries become OwnStorageError."""
        try:
            yield
        except (ResourceNotFoundError, ResourceExistsError):
            raise
        except AzureError as error:
            raise OwnStorageError(f"The service's own storage (AzureWebJobsStorage) did not answer "
                                  f"({status_text(error)}) after repeated tries.") from error

    async def _write(self, operation_id: str, name: str, data: bytes) -> None:
        async with self._own_storage():
            await self._blob(operation_id, name).upload_blob(data, overwrite=True)

    async def _read(self, operation_id: str, name: str) -> bytes:
        async with self._own_storage():
            return await (await self._blob(operation_id, name).download_blob()).readall()

    async def create(self, operation_id: str) -> None:
        """Create the operation's work container."""
        await self._container(operation_id).create_container()

    async def save_identifiers(self, operation_id: str, identifiers: Sequence[str]) -> None:
        """Store the export's identifiers in pages of 1,000."""
        pages = range(0, len(identifiers), IDENTIFIERS_PER_PAGE)
        await _bounded(self._write(operation_id, f"identifiers/{start // IDENTIFIERS_PER_PAGE:06d}.json",
                                   json.dumps(list(identifiers[start:start + IDENTIFIERS_PER_PAGE])).encode())
                       for start in pages)

    async def load_identifiers(self, operation_id: str, start: int, count: int) -> List[str]:
        """Identifiers `start` to `start + count` (fewer at the end of the list)."""
        first, last = start // IDENTIFIERS_PER_PAGE, (start + count - 1) // IDENTIFIERS_PER_PAGE
        pages = await _bounded(self._read(operation_id, f"identifiers/{page:06d}.json")
                               for page in range(first, last + 1))
        values = [value for page in pages for value in json.loads(page)]
        offset = start - first * IDENTIFIERS_PER_PAGE
        return values[offset:offset + count]

    async def save_batches(self, operation_id: str, first_index: int, batches: Sequence[InstanceBatch]) -> None:
        """Store resolved batches under consecutive numbers from `first_index`."""
        await _bounded(self._write(operation_id, f"batches/{first_index + i:08d}.json",
                                   json.dumps(batch.to_dict()).encode()) for i, batch in enumerate(batches))

    async def load_batch(self, operation_id: str, index: int) -> InstanceBatch:
        """The batch stored under number `index`."""
        return InstanceBatch.from_dict(json.loads(await self._read(operation_id, f"batches/{index:08d}.json")))

    async def load_batch_outcome(self, operation_id: str, index: int) -> Optional[Dict[str, Any]]:
        """What a finished attempt at batch `index` returned, or None if no attempt finished."""
        try:
            return json.loads(await self._read(operation_id, f"outcomes/{index:08d}.json"))
        except ResourceNotFoundError:
            return None

    async def save_batch_outcome(self, operation_id: str, index: int, outcome: Dict[str, Any]) -> None:
        """Record what batch `index` returned, so a retried activity returns it again instead of copying again."""
        await self._write(operation_id, f"outcomes/{index:08d}.json", json.dumps(outcome).encode())

    async def start_batch(self, operation_id: str, index: int) -> bool:
        """Note that an attempt at batch `index` starts; True when an earlier attempt started it too."""
        marker = self._blob(operation_id, f"started/{index:08d}")
        try:
            await marker.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            return True
        return False

    async def save_sealed_destination(self, operation_id: str, sealed: str) -> None:
        """Keep the sealed destination where only this service reads it, out of every durable payload."""
        await self._write(operation_id, DESTINATION, sealed.encode())

    async def load_sealed_destination(self, operation_id: str) -> str:
        """The sealed destination; raise OperationRevokedError once the operation has ended."""
        try:
            return (await self._read(operation_id, DESTINATION)).decode()
        except ResourceNotFoundError:
            raise OperationRevokedError(f"Export {operation_id} has ended; its destination is revoked.") from None

    async def is_revoked(self, operation_id: str) -> bool:
        """Whether the operation's sealed destination (or its whole work container) is gone; one quick request."""
        return not await self._blob(operation_id, DESTINATION).exists(**QUICK)

    async def discard(self, operation_id: str) -> None:
        """Delete the operation's work container, and with it every working file; one already gone is fine."""
        try:
            await self._container(operation_id).delete_container()
        except ResourceNotFoundError:
            pass

    async def operations(self) -> AsyncIterator[Tuple[str, datetime]]:
        """Each operation that has a work container, with the time the container was created (nothing changes a
        container's own properties afterwards, so its last-modified time is its creation)."""
        async for container in self._service.list_containers(name_starts_with=f"{self._prefix}-"):
            operation_id = container.name[len(self._prefix) + 1:]
            if is_operation_id(operation_id):
                yield operation_id, container.last_modified

    async def last_written(self, operation_id: str, created: datetime) -> Optional[datetime]:
        """When the operation's working files were last written (`created` if it has none); None once it is gone."""
        try:
            return max([created] + [blob.last_modified async for blob in self._container(operation_id).list_blobs()])
        except ResourceNotFoundError:
            return None

    async def revoke(self, operation_id: str) -> None:
        """Delete the sealed destination, so no step can open the destination again."""
        try:
            await self._blob(operation_id, DESTINATION).delete_blob()
        except ResourceNotFoundError:
            pass

    async def running_steps(self, operation_id: str) -> int:
        """How many steps of the operation have registered and not yet marked themselves ended; one quick listing."""
        try:
            return len([blob async for blob in self._container(operation_id).list_blobs(
                name_starts_with=ACTIVE_STEPS, include=["metadata"], **QUICK)
                if (blob.metadata or {}).get(STEP_STATE) != STEP_ENDED])
        except ResourceNotFoundError:
            return 0

    async def register_step(self, operation_id: str) -> BlobClient:
        """Create a new `active/<id>` marker saying a step of the operation is running; raise if the operation ended."""
        marker = self._blob(operation_id, f"{ACTIVE_STEPS}{uuid.uuid4().hex}")
        try:
            await marker.create_append_blob(metadata={STEP_STATE: STEP_RUNNING})
        except ResourceNotFoundError:  # the work container is gone: the operation has ended
            raise OperationRevokedError(f"Export {operation_id} has ended; its destination is revoked.") from None
        return marker
