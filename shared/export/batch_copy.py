"""Copies one batch of instances with bounded concurrency, retrying each instance once, and lists what it wrote."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Dict, Iterable, List, Optional

from shared.deid.refusal import NotDeidentifiableError
from shared.destination.blob_destination import result_blob_name
from shared.destination.error_log import ErrorLog
from shared.destination.manifest import manifest_line
from shared.destination.streamed_upload import IntegrityError, StoredFile
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import InstanceBatch, Progress, SourceInstance
from shared.export.work_store import OperationRevokedError
from shared.source.protocol import (NOT_FOUND_MESSAGES, InstanceUnavailableError, StoreReadError,
                                    StoreUnavailableError)

INSTANCE_ATTEMPTS = 2
RETRY_DELAY_SECONDS = 1.0
OUTAGE_RUN = 10  # instances in a row the store could not serve, none served between: the store is down
Reuse = Callable[[SourceInstance], Awaitable[Optional[StoredFile]]]


@dataclass(frozen=True)
class BatchCopied:
    """A batch's counts and its manifest lines, in batch order."""

    progress: Progress
    manifest_lines: List[bytes]


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
                     admit: Callable[[], Awaitable[bool]] = _always, reuse: Optional[Reuse] = None) -> BatchCopied:
    """Copy each instance to `<id>/results/...`; one the store cannot serve is logged and skipped, refusals propagate.

    An instance the store cannot read whole (a fault that outlasted the store's own retries, a body that is not
    DICOM, a size or MD5 that does not match) is tried INSTANCE_ATTEMPTS times, then logged and skipped; OUTAGE_RUN
    such read faults in a row with nothing served between are an outage (StoreUnavailableError), not bad instances. An
    instance the caller named that the store does not have is logged as not found, as resolution would, and one that
    cannot be de-identified is logged at once; lines and manifest name the instance as exported. `reuse`,
    given on a retried batch, returns what an earlier attempt already wrote so it is not copied again. Each copy
    starts once `admit()` says it may; once it says no (the operation was canceled), no further copy starts,
    copies in flight finish, and OperationRevokedError is raised.
    """
    semaphore = asyncio.Semaphore(copies_in_flight)
    lines: Dict[int, bytes] = {}
    unserved_in_a_row = [0]

    async def copy_one(index: int, item: SourceInstance) -> Optional[bool]:
        async with semaphore:
            for attempt in range(1, INSTANCE_ATTEMPTS + 1):
                if not await admit():
                    return None
                exported_as = copier.exported_as(item.identifier)
                try:
                    stored = (await reuse(item) if reuse else None) or await copier.copy(item)
                except InstanceUnavailableError as error:  # a named one not found is echoed as the caller sent it
                    log.add(str(item.identifier) if item.named else str(exported_as),
                            NOT_FOUND_MESSAGES["instance"] if item.named else str(error))
                    return False
                except NotDeidentifiableError as error:  # the same on every attempt: not tried again
                    log.add(str(exported_as), str(error))
                    return False
                except (StoreReadError, IntegrityError) as error:
                    if attempt < INSTANCE_ATTEMPTS:
                        await asyncio.sleep(RETRY_DELAY_SECONDS * attempt)
                        continue
                    unserved_in_a_row[0] += isinstance(error, StoreReadError)
                    if unserved_in_a_row[0] >= OUTAGE_RUN:
                        raise StoreUnavailableError(f"The DICOM store could not serve {OUTAGE_RUN} instances in a row, "
                                                    f"each tried {INSTANCE_ATTEMPTS} times; it looks unavailable "
                                                    f"(last: {error})") from error
                    log.add(str(exported_as), f"{error} The copy was tried {INSTANCE_ATTEMPTS} times.")
                    return False
                unserved_in_a_row[0] = 0
                path = result_blob_name(copier.operation_id, exported_as)
                lines[index] = manifest_line(exported_as, path, stored)
                return True
        return False

    copied = await _first_failure_cancels_rest(copy_one(i, item) for i, item in enumerate(batch.instances()))
    if None in copied:
        raise OperationRevokedError("The export was canceled while this batch was being copied.")
    exported = sum(copied)
    return BatchCopied(Progress(exported=exported, skipped=len(copied) - exported),
                       [lines[i] for i in sorted(lines)])
