"""Runs one export step (resolve or copy) with the operation's destination, store, working files and error log at hand."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from azure.storage.blob.aio import ContainerClient

from shared.destination import BlobDestination, DestinationRefusedError
from shared.dicom_store import DicomStore, StoreRefusedError, connect_store
from shared.error_log import ErrorLog
from shared.sealing import unseal
from shared.settings import ExportSettings, StoreSettings, WorkSettings
from shared.storage_clients import set_pool_size
from shared.work_store import OperationRevokedError, WorkStore

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


async def run_export_step(operation_id: str, step: Callable[[ExportSession], Awaitable[T]],
                          refused: Callable[[str], T]) -> T:
    """Run `step` and flush its error lines; a refusal by the destination or the store becomes `refused(message)`.

    Clients come from the process's shared pools; the destination is unsealed from the working files, so a step
    of an operation that has ended (and whose sealed destination is deleted) is refused too.
    """
    settings = ExportSettings.from_environment()
    set_pool_size(settings.copies_in_flight)
    work = await WorkStore.connect(WorkSettings.from_environment())
    try:
        sealed = await work.load_sealed_destination(operation_id)
        destination = BlobDestination.from_dict(unseal(sealed, settings.require_sealing_key(), operation_id))
        container = destination.shared_client(settings.identity_client_id)
        session = ExportSession(operation_id, destination, container,
                                connect_store(StoreSettings.from_environment()), work,
                                ErrorLog(container, operation_id))
        result = await step(session)
        async with destination.guard():
            await session.log.flush()
        return result
    except (DestinationRefusedError, StoreRefusedError, OperationRevokedError) as refusal:
        return refused(str(refusal))
