"""Copies one batch of instances from the DICOM store to the destination with bounded concurrency."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterable, List, Optional

from shared.destination.error_log import ErrorLog
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import InstanceBatch, Progress
from shared.export.work_store import OperationRevokedError
from shared.identifiers import DicomIdentifier
from shared.source.protocol import NOT_FOUND_MESSAGES, InstanceUnavailableError


async def _first_failure_cancels_rest(jobs: Iterable[Awaitable[Optional[bool]]]) -> List[Optional[bool]]:
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


async def _always() -> bool:
    return True


async def copy_batch(batch: InstanceBatch, copier: InstanceCopier, log: ErrorLog, copies_in_flight: int,
                     admit: Callable[[], Awaitable[bool]] = _always) -> Progress:
    """Copy each instance to `<id>/results/...`; one the store cannot serve is logged and skipped, refusals propagate.

    An instance the caller named that the store does not have is logged as not found, as resolution would. Each
    copy starts once `admit()` says it may; once it says no (the operation was canceled), no further copy starts,
    copies in flight finish, and OperationRevokedError is raised.
    """
    semaphore = asyncio.Semaphore(copies_in_flight)

    async def copy_one(instance: DicomIdentifier, named: bool) -> Optional[bool]:
        async with semaphore:
            if not await admit():
                return None
            try:
                await copier.copy(instance)
            except InstanceUnavailableError as error:
                log.add(str(instance), NOT_FOUND_MESSAGES["instance"] if named else str(error))
                return False
            return True

    copied = await _first_failure_cancels_rest(copy_one(instance, named) for instance, named in batch.instances())
    if None in copied:
        raise OperationRevokedError("The export was canceled while this batch was being copied.")
    exported = sum(copied)
    return Progress(exported=exported, skipped=len(copied) - exported)
