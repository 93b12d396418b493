"""The DICOM store the service exports from: its protocol, and a blob container holding `<study>/<series>/<sop>.dcm`."""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, List, Optional, Protocol

from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.errors import InvalidRequestError
from shared.identifiers import DicomIdentifier, parse_identifier
from shared.identity import app_identity
from shared.settings import StoreSettings
from shared.storage_errors import is_client_error, status_text

_VANISHED_STATUSES = {404, 410, 412}
NOT_FOUND_MESSAGES = {
    "study": "The specified study cannot be found.",
    "series": "The specified series cannot be found.",
    "instance": "The specified instance cannot be found.",
}


def store_blob_name(instance: DicomIdentifier) -> str:
    """Where the store keeps an instance: `<study>/<series>/<sop>.dcm`."""
    return f"{instance.study}/{instance.series}/{instance.sop}.dcm"


def instance_from_blob_name(name: str) -> Optional[DicomIdentifier]:
    """The instance a store blob holds, or None for a blob that is not at `<study>/<series>/<sop>.dcm`."""
    if not name.endswith(".dcm") or name.count("/") != 2:
        return None
    try:
        return parse_identifier(name[: -len(".dcm")])
    except InvalidRequestError:
        return None


class InstanceUnavailableError(Exception):
    """The instance was listed but can no longer be read (deleted or changed since)."""


class StoreReadError(Exception):
    """Reading an instance's bytes from the store failed part-way; the copy should be retried."""


class StoreRefusedError(Exception):
    """The store refuses the service's credentials (401/403): the export fails with this message for the caller."""


@dataclass(frozen=True)
class InstancePage:
    """Some instances matching an identifier, and where to go on listing (None when done)."""

    instances: List[DicomIdentifier]
    continuation: Optional[str]


class InstanceContent(Protocol):
    """An open instance: its size (None when the store does not say) and its bytes as a stream of chunks."""

    size: Optional[int]

    def chunks(self) -> AsyncIterator[bytes]:
        """The instance's bytes, in order."""


class DicomStore(Protocol):
    """What the export needs from a DICOM store."""

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """A page of at most `limit` instances named by `identifier`, starting at `continuation`."""

    async def open_instance(self, instance: DicomIdentifier) -> InstanceContent:
        """Open an instance for reading; raise InstanceUnavailableError when it is gone."""

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """A short-lived read-only URL a destination account can copy the instance from, or None (stream only)."""


class _BlobContent:
    def __init__(self, downloader):
        self._downloader = downloader
        self.size = downloader.size

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._downloader.chunks():
                yield chunk
        except HttpResponseError as error:
            raise StoreReadError(f"Reading from the DICOM store failed ({status_text(error)}).") from error


class BlobDicomStore:
    """A DicomStore backed by a blob container laid out as `<study>/<series>/<sop>.dcm`."""

    def __init__(self, container: ContainerClient):
        self._container = container

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """List by blob-name prefix; an instance identifier matches its exact blob name only."""
        exact = store_blob_name(identifier) if identifier.level == "instance" else None
        prefix = exact or f"{identifier}/"
        pages = self._container.list_blobs(name_starts_with=prefix, results_per_page=limit) \
            .by_page(continuation_token=continuation)
        instances: List[DicomIdentifier] = []
        async for page in pages:
            async for blob in page:
                instance = instance_from_blob_name(blob.name)
                if instance is not None and (exact is None or blob.name == exact):
                    instances.append(instance)
            break
        return InstancePage(instances, pages.continuation_token or None)

    async def open_instance(self, instance: DicomIdentifier) -> InstanceContent:
        """Start downloading the instance's blob; a gone or unreadable blob (a 4xx) raises InstanceUnavailableError."""
        try:
            downloader = await self._container.get_blob_client(store_blob_name(instance)).download_blob()
        except HttpResponseError as error:
            if error.status_code in _VANISHED_STATUSES:
                raise InstanceUnavailableError(
                    "The instance could not be read from the DICOM store: it was deleted or changed after the "
                    "export started.") from error
            if is_client_error(error):
                raise InstanceUnavailableError(
                    f"The instance could not be read from the DICOM store ({status_text(error)}).") from error
            raise
        return _BlobContent(downloader)

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """Not offered yet: every copy streams."""
        return None


def _service_client(settings: StoreSettings):
    if settings.connection_string:
        return BlobServiceClient.from_connection_string(settings.connection_string), None
    credential = app_identity(settings.client_id)
    return BlobServiceClient(settings.service_uri, credential=credential), credential


@asynccontextmanager
async def open_store(settings: StoreSettings) -> AsyncIterator[DicomStore]:
    """Connect to the configured store (a blob container or a DICOMweb server) for the duration of a block."""
    if settings.dicomweb is not None:
        from shared.dicomweb_store import open_dicomweb_store  # it builds on this module's types
        async with open_dicomweb_store(settings.dicomweb) as dicomweb:
            yield dicomweb
        return
    service, credential = _service_client(settings)
    try:
        async with service:
            yield BlobDicomStore(service.get_container_client(settings.container))
    finally:
        if credential is not None:
            await credential.close()
