"""Prepares an export: checks the destination, stores identifiers and sealed credentials; undoes it if it fails."""
from __future__ import annotations

from azure.core.exceptions import AzureError, ServiceRequestError
from azure.storage.blob.aio import ExponentialRetry

from shared.api.request import ExportRequest
from shared.destination.blob_destination import BlobDestination, DestinationRefusedError, DestinationUnavailableError
from shared.destination.error_log import create_error_log, probe_error_log
from shared.deid.deidentification import require_key
from shared.destination.sealing import seal
from shared.errors import InvalidRequestError
from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import Batching
from shared.export.work_store import WorkStore
from shared.request_fields import the_field
from shared.settings import ExportSettings, NotifySettings, StoreSettings, WorkSettings
from shared.timestamps import utc_iso


def _not_taking_writes(destination: BlobDestination, error: BaseException) -> str:
    if isinstance(error, ServiceRequestError):
        account, container_name = destination.account_and_container
        return (f"Cannot connect to Azure Blob Storage container '{container_name}' in account '{account}': "
                "check the account's endpoint and that it is reachable.")
    return destination.describe_refusal(error)


def check_export(request: ExportRequest, settings: ExportSettings) -> NotifySettings:
    """What a start checks before it connects anywhere: the sealing key (and the de-identification key when asked),
    the identity for destinations, a store that can answer a query, and the completion event's settings (returned)."""
    settings.require_sealing_key()
    if request.deidentify is not None:
        require_key()
    if request.destination.use_managed_identity and not settings.identity_client_id:
        raise InvalidRequestError(
            f"{the_field('destination.settings.useManagedIdentity')} cannot be true: this service has no identity "
            "for destinations (app setting EXPORT_IDENTITY_CLIENT_ID is not set). Give 'blobContainerUri' with a "
            "SAS token instead.")
    if request.source_kind == "query" and StoreSettings.from_environment().dicomweb is None:
        raise InvalidRequestError(
            f"{the_field('source.type')} is \"query\", which this service cannot answer: its DICOM store is a blob "
            "container (app setting DICOM_STORE_TYPE blob), which keeps no index of study attributes. Name studies, "
            "series or instances with 'identifiers', or leave out 'source' to export everything.")
    return NotifySettings.from_environment()


async def check_destination(destination: BlobDestination, settings: ExportSettings, operation_id: str,
                            write: bool = True) -> None:
    """Check that the destination takes writes by creating `<id>/errors.log`; with `write=False` by the same request
    made conditional on an ETag no blob has, which storage refuses (412) only after it has found the container and
    checked the permission to write, so nothing is written. A destination that does not take writes is a 400."""
    try:
        quick_retry = ExponentialRetry(initial_backoff=1, increment_base=1, retry_total=1, random_jitter_range=0.5)
        async with destination.open(settings.identity_client_id, retry_policy=quick_retry) as container, \
                destination.guard():
            await (create_error_log if write else probe_error_log)(container, operation_id)
    except DestinationRefusedError as refusal:
        raise InvalidRequestError(str(refusal)) from None
    except DestinationUnavailableError as fault:
        raise InvalidRequestError(_not_taking_writes(destination, fault.__cause__)) from None
    except (AzureError, TypeError, ValueError) as error:  # the SDK can trip over a non-storage endpoint's answer
        raise InvalidRequestError(_not_taking_writes(destination, error)) from None


async def prepare_export(request: ExportRequest, operation_id: str, settings: ExportSettings,
                         service_url: str = "") -> ExportCheckpoint:
    """Check the request and that the destination takes writes (creating `<id>/errors.log`); store what to export
    and the sealed destination among the working files; return the first checkpoint, which holds neither.

    `service_url` (the API's base URL) becomes the source of the export's completion event.
    """
    requested_at = utc_iso()
    notify = check_export(request, settings)
    destination = request.destination
    await check_destination(destination, settings, operation_id)
    entries = request.entries()
    work = await WorkStore.connect(WorkSettings.from_environment())
    await work.create(operation_id)
    await work.save_identifiers(operation_id, entries)
    await work.save_sealed_destination(operation_id,
                                       seal(destination.to_dict(), settings.require_sealing_key(), operation_id))
    return ExportCheckpoint(
        operation_id=operation_id,
        created_time=requested_at,
        error_href=destination.error_href(operation_id),
        identifier_count=len(entries),
        batching=Batching(settings.batch_size, settings.batches_in_flight, settings.copies_per_batch,
                          settings.batch_max_bytes),
        copy_mode=settings.copy_mode,
        partition=request.partition,
        deidentify=None if request.deidentify is None else request.deidentify.to_dict(),
        notify=notify.url is not None,
        service_url=service_url,
    )


async def abandon_export(operation_id: str) -> None:
    """Delete the working files `prepare_export` stored (the sealed destination with them), for a start that failed."""
    work = await WorkStore.connect(WorkSettings.from_environment())
    await work.discard(operation_id)
