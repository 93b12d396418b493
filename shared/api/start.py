"""Prepares an export before anything starts: checks the destination, creates errors.log, stores identifiers and sealed credentials."""
from __future__ import annotations

from azure.core.exceptions import AzureError, ServiceRequestError
from azure.storage.blob.aio import ExponentialRetry

from shared.api.request import ExportRequest
from shared.destination.blob_destination import BlobDestination, DestinationRefusedError, DestinationUnavailableError
from shared.destination.error_log import create_error_log
from shared.destination.sealing import seal
from shared.errors import InvalidRequestError
from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import Batching
from shared.export.work_store import WorkStore
from shared.settings import ExportSettings, WorkSettings
from shared.timestamps import utc_iso


def _not_taking_writes(destination: BlobDestination, error: BaseException) -> str:
    if isinstance(error, ServiceRequestError):
        account, container_name = destination.account_and_container
        return (f"Cannot connect to Azure Blob Storage container '{container_name}' in account '{account}': "
                "check the account's endpoint and that it is reachable.")
    return destination.describe_refusal(error)


async def prepare_export(request: ExportRequest, operation_id: str, settings: ExportSettings) -> ExportCheckpoint:
    """Check that the destination takes writes by creating `<id>/errors.log`; store the identifiers and the sealed
    destination among the working files; return the first checkpoint, which holds neither."""
    requested_at = utc_iso()
    key = settings.require_sealing_key()
    destination = request.destination
    try:
        quick_retry = ExponentialRetry(initial_backoff=1, increment_base=1, retry_total=1, random_jitter_range=0.5)
        async with destination.open(settings.identity_client_id, retry_policy=quick_retry) as container, \
                destination.guard():
            await create_error_log(container, operation_id)
    except DestinationRefusedError as refusal:
        raise InvalidRequestError(str(refusal)) from None
    except DestinationUnavailableError as fault:
        raise InvalidRequestError(_not_taking_writes(destination, fault.__cause__)) from None
    except (AzureError, TypeError, ValueError) as error:  # the SDK can trip over a non-storage endpoint's answer
        raise InvalidRequestError(_not_taking_writes(destination, error)) from None
    work = await WorkStore.connect(WorkSettings.from_environment())
    await work.create(operation_id)
    await work.save_identifiers(operation_id, [str(i) for i in request.identifiers])
    await work.save_sealed_destination(operation_id, seal(destination.to_dict(), key, operation_id))
    return ExportCheckpoint(
        operation_id=operation_id,
        created_time=requested_at,
        error_href=destination.error_href(operation_id),
        identifier_count=len(request.identifiers),
        batching=Batching(settings.batch_size, settings.batches_in_flight, settings.copies_per_batch),
        copy_mode=settings.copy_mode,
    )
