"""Runs one export step with the operation's destination, store, working files and error log at hand."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, List, Optional, TypeVar

from azure.storage.blob.aio import ContainerClient

from shared.cloud.clients import set_pool_size
from shared.destination.blob_destination import BlobDestination, DestinationRefusedError
from shared.destination.error_log import ErrorLog
from shared.destination.sealing import unseal
from shared.destination.write_gate import writes_permitted_by
from shared.errors import ServiceConfigurationError
from shared.export.step_watch import StepWatch
from shared.export.work_store import OperationRevokedError, WorkStore
from shared.partitions import DEFAULT_PARTITION
from shared.settings import ExportSettings, StoreSettings, WorkSettings
from shared.source.connect import connect_store
from shared.source.protocol import DicomStore, StoreRefusedError

T = TypeVar("T")


@dataclass
class ExportSession:
    """What an export step works with."""

    operation_id: str
    destination: BlobDestination
    container: ContainerClient
    store: DicomStore
    work: WorkStore
    log: ErrorLog
    watch: StepWatch
    read: Any = None  # what the step's opening reads returned
    closing: List[Callable[[], Awaitable[None]]] = field(default_factory=list)  # records to write once it wrote all

    def record_at_close(self, record: Callable[[], Awaitable[None]]) -> None:
        """Have `record` (a write to the working files, none to the destination) sent once the step has written
        everything else, beside its mark that it ended."""
        self.closing.append(record)


async def run_export_step(operation_id: str, step: Callable[[ExportSession], Awaitable[T]],
                          refused: Callable[[str], T], partition: str = DEFAULT_PARTITION,
                          reads: Optional[Callable[[WorkStore], Awaitable[Any]]] = None) -> T:
    """Run `step` and flush its error lines; a refusal by the destination or the store, or a broken app setting,
    becomes `refused(message)`, which fails the export at once (no retry can fix those).

    Clients come from the process's shared pools; the store is the view of the export's `partition`. The step
    registers as running before it reads and unseals the destination from the working files, so a step of an
    operation that has ended or been canceled is refused; every request it sends to the destination passes its
    watch's check (see shared/export/step_watch.py). `reads`, the step's own opening reads of its working files, go
    out with the destination's; their result is the session's `read`. What the step asks to record at its close is
    written after its last destination write, beside its mark that it ended.
    """
    try:
        settings = ExportSettings.from_environment()
        set_pool_size(settings.copies_in_flight)
        work = await WorkStore.connect(WorkSettings.from_environment())
        async with StepWatch(work, operation_id, (lambda: reads(work)) if reads else None) as watch:
            destination = BlobDestination.from_dict(unseal(watch.sealed, settings.require_sealing_key(),
                                                           operation_id))
            container = destination.shared_client(settings.identity_client_id)
            session = ExportSession(operation_id, destination, container,
                                    connect_store(StoreSettings.from_environment(), partition), work,
                                    ErrorLog(container, operation_id), watch, watch.read)
            with writes_permitted_by(watch.check):
                result = await step(session)
                async with destination.guard():
                    await session.log.flush()
            closing = asyncio.gather(*(record() for record in session.closing))  # beside the ended mark
        await closing
        return result
    except (DestinationRefusedError, StoreRefusedError, OperationRevokedError) as refusal:
        return refused(str(refusal))
    except ServiceConfigurationError as error:
        return refused(f"The export service is misconfigured: {error}")
