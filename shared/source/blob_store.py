"""A DICOM store in a blob container holding `<study>/<series>/<sop>.dcm`, copied server-side by short-lived SAS."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, List, Optional
from urllib.parse import quote

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient

from shared.cloud.storage_errors import error_code, is_client_error, status_text
from shared.errors import InvalidRequestError
from shared.identifiers import DicomIdentifier, parse_identifier
from shared.partitions import DEFAULT_PARTITION, is_default_partition
from shared.source.blob_listing import list_blob_page
from shared.source.protocol import (
    VANISHED_STATUSES,
    InstanceContent,
    InstancePage,
    StoreReadError,
    StoreRefusedError,
    unavailable_instance,
)
from shared.study_selection import StudySelection

_READ = BlobSasPermissions(read=True)
SOURCE_SAS_LIFETIME = timedelta(minutes=15)
SOURCE_SAS_CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=2)
BLOB_QUERY_REFUSAL = ("A query selects studies by their attributes, which a DICOM store in a blob container does not "
                      "index (app setting DICOM_STORE_TYPE blob).")


def store_blob_name(instance: DicomIdentifier) -> str:
    """Where the store keeps an instance: `<study>/<series>/<sop>.dcm`."""
    return f"{instance.study}/{instance.series}/{instance.sop}.dcm"


def partition_prefix(partition: str) -> str:
    """What a partition's blob names start with: nothing for the default one, else `partitions/<partition>/`."""
    return "" if is_default_partition(partition) else f"partitions/{partition}/"


def instance_from_blob_name(name: str) -> Optional[DicomIdentifier]:
    """The instance a store blob holds, or None for a blob that is not at `<study>/<series>/<sop>.dcm`."""
    if not name.endswith(".dcm") or name.count("/") != 2:
        return None
    try:
        return parse_identifier(name[: -len(".dcm")])
    except InvalidRequestError:
        return None


class _BlobContent:
    def __init__(self, downloader):
        self._downloader = downloader
        self.size = downloader.size
        md5 = downloader.properties.content_settings.content_md5
        self.md5 = base64.b64encode(md5).decode() if md5 else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._downloader.chunks():
                yield chunk
        except AzureError as error:  # a broken download is the store's, never the destination's, fault
            raise StoreReadError(f"Reading from the DICOM store failed ({status_text(error)}).") from error


def _refusal(error: HttpResponseError) -> StoreRefusedError:
    return StoreRefusedError(
        f"The DICOM store refused the export service's credentials ({status_text(error)}): check the "
        "DICOM_STORE setting, or the role of the service's managed identity on the store.")


class BlobDicomStore:
    """A DicomStore backed by a blob container laid out as `<study>/<series>/<sop>.dcm`, or for a partition other
    than the default as `partitions/<partition>/<study>/<series>/<sop>.dcm`."""

    def __init__(self, service: BlobServiceClient, container_name: str, partition: str = DEFAULT_PARTITION):
        self._service = service
        self._container = service.get_container_client(container_name)
        self._container_url = self._container.url.split("?", 1)[0].rstrip("/")
        self._delegation_key: Optional[UserDelegationKey] = None
        self._prefix = partition_prefix(partition)

    def _blob_name(self, instance: DicomIdentifier) -> str:
        return self._prefix + store_blob_name(instance)

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """List by blob-name prefix; an instance identifier matches its exact blob name only."""
        exact = self._blob_name(identifier) if identifier.level == "instance" else None
        return await self._list(exact or f"{self._prefix}{identifier}/", exact, continuation, limit)

    async def list_selected(self, selection: StudySelection, continuation: Optional[str],
                            limit: int) -> InstancePage:
        """Every instance of the partition, listed by name (the default partition's listing passes over the other
        partitions' blobs, which do not have its layout); a query is refused, as the container keeps no index."""
        if selection.filters:
            raise StoreRefusedError(BLOB_QUERY_REFUSAL)
        return await self._list(self._prefix, None, continuation, limit)

    async def _list(self, prefix: str, exact: Optional[str], continuation: Optional[str], limit: int) -> InstancePage:
        try:
            page = await list_blob_page(self._container, prefix or None, continuation, limit)
        except HttpResponseError as error:
            if error.status_code in (401, 403):
                raise _refusal(error) from error
            raise
        instances: List[DicomIdentifier] = []
        sizes: List[Optional[int]] = []
        md5s: List[Optional[str]] = []
        for blob in page.blobs:
            instance = instance_from_blob_name(blob.name[len(self._prefix):])
            if instance is not None and (exact is None or blob.name == exact):
                instances.append(instance)
                sizes.append(blob.size)
                md5s.append(blob.md5)
        return InstancePage(instances, page.next_marker, sizes=sizes, md5s=md5s)

    async def open_instance(self, instance: DicomIdentifier) -> InstanceContent:
        """Start downloading the instance's blob.

        A gone or unreadable blob (a 4xx) raises InstanceUnavailableError, 401/403 StoreRefusedError, and a fault
        that outlasted the SDK's retries (5xx, no answer) StoreReadError.
        """
        try:
            downloader = await self._container.get_blob_client(self._blob_name(instance)).download_blob()
        except HttpResponseError as error:
            if error.status_code in (401, 403):
                raise _refusal(error) from error
            if error.status_code in VANISHED_STATUSES or is_client_error(error):
                raise unavailable_instance(error.status_code, error_code(error)) from error
            raise StoreReadError(f"Reading from the DICOM store failed ({status_text(error)}).") from error
        except AzureError as error:
            raise StoreReadError(f"Reading from the DICOM store failed ({type(error).__name__}).") from error
        return _BlobContent(downloader)

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """The blob's URL with a read-only SAS for this blob alone, valid for a few minutes; None (stream it) when
        the store is reached with a SAS of its own.

        The SAS is signed with the account key (connection string) or is a user delegation SAS (managed identity).
        A store-wide SAS is never handed to a destination: it would let the destination's account read, or do
        whatever else it allows, everywhere in the store.
        """
        credential = self._service.credential
        account_key = getattr(credential, "account_key", None)
        if not account_key and not hasattr(credential, "get_token"):
            return None
        name = self._blob_name(instance)
        now = datetime.now(timezone.utc)
        signing: dict = {}
        if account_key:
            signing["account_key"] = account_key
        else:
            signing["user_delegation_key"] = await self._user_delegation_key(now)
        sas = generate_blob_sas(self._container.account_name, self._container.container_name, name,
                                permission=_READ, start=now - SOURCE_SAS_CLOCK_SKEW,
                                expiry=now + SOURCE_SAS_LIFETIME, **signing)
        return f"{self._container_url}/{quote(name, safe='/~')}?{sas}"  # as BlobClient.url, without building one

    async def _user_delegation_key(self, now: datetime) -> UserDelegationKey:
        key = self._delegation_key
        if key is None or _parse_time(key.signed_expiry) - now < SOURCE_SAS_LIFETIME * 2:
            try:
                key = await self._service.get_user_delegation_key(now - SOURCE_SAS_CLOCK_SKEW,
                                                                  now + DELEGATION_KEY_LIFETIME)
            except HttpResponseError as error:
                if error.status_code in (401, 403):
                    raise _refusal(error) from error
                raise
            self._delegation_key = key
        return key


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
