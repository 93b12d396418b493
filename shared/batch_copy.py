"""Copies one batch of instances from the DICOM store to the destination with bounded concurrency."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Iterable, List

from azure.storage.blob.aio import ContainerClient

from shared.destination import BlobDestination, result_blob_name
from shared.dicom_store import DicomStore, InstanceUnavailableError
from shared.error_log import ErrorLog
from shared.export_state import InstanceBatch, Progress
from shared.identifiers import DicomIdentifier


async def _first_failure_cancels_rest(jobs: Iterable[Awaitable[bool]]) -> List[bool]:
    tasks = [asyncio.ensure_future(job) for job in jobs]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failure = next((task.exception() for task in done if task.exception()), None)
    if failure is not None:
        raise failure
    return [task.result() for task in tasks]


async def copy_batch(batch: InstanceBatch, store: DicomStore, destination: BlobDestination,
                     container: ContainerClient, operation_id: str, log: ErrorLog, copies_in_flight: int) -> Progress:
    """Stream each instance into `<id>/results/...`; a vanished source is logged and skipped, refusals propagate."""
    semaphore = asyncio.Semaphore(copies_in_flight)

    async def copy_one(instance: DicomIdentifier) -> bool:
        async with semaphore:
            try:
                content = await store.open_instance(instance)
            except InstanceUnavailableError as error:
                log.add(str(instance), str(error))
                return False
            async with destination.guard():
                await container.get_blob_client(result_blob_name(operation_id, instance)).upload_blob(
                    content.chunks(), length=content.size, overwrite=True)
            return True

    copied = await _first_failure_cancels_rest(copy_one(instance) for instance in batch.instances())
    exported = sum(copied)
    return Progress(exported=exported, skipped=len(copied) - exported)
