"""Runs one export step (resolve or copy) with the operation's destination, store and error log opened."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from azure.storage.blob.aio import ContainerClient

from shared.destination import BlobDestination, DestinationRefusedError
from shared.dicom_store import DicomStore, open_store
from shared.error_log import ErrorLog
from shared.sealing import unseal
from shared.settings import ExportSettings, StoreSettings

T = TypeVar("T")


@dataclass
class ExportSession:
    """What an export step works with."""

    destination: BlobDestination
    container: ContainerClient
    store: DicomStore
    log: ErrorLog


async def run_export_step(operation_id: str, sealed_destination: str, step: Callable[[ExportSession], Awaitable[T]],
                          refused: Callable[[str], T]) -> T:
    """Open everything, run `step`, flush its error lines; a destination refusal becomes `refused(message)`."""
    settings = ExportSettings.from_environment()
    destination = BlobDestination.from_dict(unseal(sealed_destination, settings.require_sealing_key(), operation_id))
    try:
        async with destination.open(settings.identity_client_id) as container, \
                open_store(StoreSettings.from_environment()) as store:
            session = ExportSession(destination, container, store, ErrorLog(container, operation_id))
            result = await step(session)
            async with destination.guard():
                await session.log.flush()
            return result
    except DestinationRefusedError as refusal:
        return refused(str(refusal))
