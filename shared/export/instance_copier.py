"""Copies one instance into the destination: server-side from a URL when the destination can read the store, else streamed."""
from __future__ import annotations

import asyncio
import logging
from typing import Dict, Optional, Tuple

from azure.core.exceptions import (HttpResponseError, ResourceNotFoundError, ServiceRequestError,
                                   ServiceResponseError)
from azure.storage.blob.aio import BlobClient, ContainerClient

from shared.cloud.storage_errors import error_code, is_client_error, status_text
from shared.deid.deidentification import Deidentification
from shared.destination.blob_destination import BlobDestination, result_blob_name
from shared.destination.streamed_upload import IntegrityError, StoredFile, md5_base64, upload_stream
from shared.export.copy_request import COPY_FROM_URL, PUT_FROM_URL, copy_requests
from shared.export.payloads import SourceInstance
from shared.identifiers import DicomIdentifier
from shared.source.part10 import checked_part10
from shared.source.protocol import DicomStore, StoreReadError

AUTO, STREAM = "auto", "stream"
SERVER_SIDE_MODES = (PUT_FROM_URL, COPY_FROM_URL)
PROBE_STRIKES = 3
_UNSUPPORTED_CODES = {"APINotImplemented", "NotImplemented", "FeatureNotSupported", "UnsupportedHeader"}
_DESTINATION_AUTH_CODES = {"AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch",
                           "InsufficientAccountPermissions", "NoAuthenticationInformation",
                           "InvalidAuthenticationInfo", "AuthorizationSourceIPMismatch",
                           "AuthorizationProtocolMismatch"}


class _Unsupported(Exception):
    """The destination does not implement this server-side copy."""


class _SourceUnreadable(Exception):
    """The destination could not copy from the source URL; `foreign` when it cannot reach the store at all."""

    def __init__(self, foreign: bool):
        super().__init__()
        self.foreign = foreign


class InstanceCopier:
    """Copies instances in the operation's copy mode; in `auto` it probes, one copy at a time, until it knows.

    Probing tries Put Blob From URL, then Copy Blob From URL, then streaming, and settles on the first that works.
    A fault answer while probing (5xx, timeout) rules a mode out only after PROBE_STRIKES of them: until then the
    instance is copied another way and the next copy probes again. A server-side copy the destination cannot make
    from this source (too large, unreadable, or not within the server timeout every destination request carries) is
    streamed instead, 4 MiB blocks at a time. Every copy is verified: a server-side copy passes the source's MD5 for
    the destination to check; a streamed copy is hashed and counted on the way and committed only if its size and
    MD5 match what the source announced.
    """

    def __init__(self, store: DicomStore, destination: BlobDestination, container: ContainerClient,
                 operation_id: str, mode: str, deidentification: Optional[Deidentification] = None):
        self._store = store
        self._destination = destination
        self._container = container
        self.operation_id = operation_id
        self.mode = STREAM if deidentification else mode  # a de-identified file is written, never copied as is
        self._deidentification = deidentification
        self._probing = asyncio.Lock()
        self._strikes: Dict[str, int] = {}

    def exported_as(self, instance: DicomIdentifier) -> DicomIdentifier:
        """The identifier an instance is exported under: its own, or its pseudonym when the export de-identifies."""
        return self._deidentification.exported_as(instance) if self._deidentification else instance

    async def copy(self, item: SourceInstance) -> StoredFile:
        """Copy one instance and say what was written.

        Raises InstanceUnavailableError when the store has lost it, StoreReadError or IntegrityError when this
        attempt could not read it whole, NotDeidentifiableError when it cannot be de-identified,
        DestinationRefusedError when the destination refuses writes.
        """
        if self.mode == AUTO:
            async with self._probing:
                if self.mode == AUTO:
                    settled, stored = await self._probe(item)
                    self.mode = settled or AUTO
                    return stored
        if self.mode in SERVER_SIDE_MODES:
            try:
                return await self._server_side(self.mode, item)
            except _Unsupported:
                logging.debug("The destination does not support %s; streaming instead.", self.mode)
            except _SourceUnreadable:
                pass
        return await self._stream(item)

    async def _probe(self, item: SourceInstance) -> Tuple[Optional[str], StoredFile]:
        for mode in SERVER_SIDE_MODES:
            if self._strikes.get(mode, 0) >= PROBE_STRIKES:
                continue
            try:
                return mode, await self._server_side(mode, item, attempts=1)
            except _Unsupported:
                self._strikes[mode] = PROBE_STRIKES
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as fault:  # a fault while probing,
                # answered or not: strike this mode, copy this instance another way
                self._strikes[mode] = self._strikes.get(mode, 0) + 1
                logging.info("Export %s: probing %s failed with %s (%d of %d); trying the next copy mode.",
                             self.operation_id, mode, status_text(fault), self._strikes[mode], PROBE_STRIKES)
                if self._strikes[mode] < PROBE_STRIKES:
                    return None, await self._stream(item)
            except _SourceUnreadable as unreadable:
                return (STREAM if unreadable.foreign else None), await self._stream(item)
        return STREAM, await self._stream(item)

    async def already_copied(self, item: SourceInstance) -> Optional[StoredFile]:
        """What an earlier attempt wrote for this instance, if anything: every copy commits whole or not at all."""
        async with self._destination.guard():
            try:
                properties = await self._blob_for(item.identifier).get_blob_properties()
            except ResourceNotFoundError:
                return None
        md5 = properties.content_settings.content_md5
        return StoredFile(properties.size, md5_base64(md5) if md5 else item.md5)

    def _blob_for(self, instance: DicomIdentifier) -> BlobClient:
        return self._container.get_blob_client(result_blob_name(self.operation_id, self.exported_as(instance)))

    async def _stream(self, item: SourceInstance) -> StoredFile:
        content = await self._store.open_instance(item.identifier)
        chunks = checked_part10(content.chunks())
        name = result_blob_name(self.operation_id, self.exported_as(item.identifier))

        def blob() -> BlobClient:  # a client only for files of several blocks
            return self._container.get_blob_client(name)

        async def put_whole(data: bytes, md5: str) -> None:  # one block: one Put Blob on the account's pool
            await copy_requests(self._container).put_blob(name, data, md5)
        if self._deidentification:  # its bytes differ from the source's: checked against their own MD5 only
            async with self._destination.guard():
                return await upload_stream(self._deidentification.chunks(chunks), blob, put_whole=put_whole)
        expected_size = item.size if item.size is not None else content.size
        expected_md5 = item.md5 or content.md5
        async with self._destination.guard():
            return await upload_stream(chunks, blob, expected_size, expected_md5, put_whole)

    async def _server_side(self, mode: str, item: SourceInstance, attempts: Optional[int] = None) -> StoredFile:
        url = await self._store.source_url(item.identifier)
        if url is None:
            raise _Unsupported()
        name = result_blob_name(self.operation_id, item.identifier)
        try:
            await copy_requests(self._container).copy(name, url, mode, item.md5, attempts)
        except HttpResponseError as error:
            await self._classify(error)
        if item.size is not None and item.md5 is not None:
            return StoredFile(item.size, item.md5)
        async with self._destination.guard():  # named, so not listed: read what was written
            properties = await self._container.get_blob_client(name).get_blob_properties()
        md5 = properties.content_settings.content_md5
        return StoredFile(properties.size, md5_base64(md5) if md5 else None)

    async def _classify(self, error: HttpResponseError) -> None:
        code = error_code(error)
        if error.status_code == 501 or code in _UNSUPPORTED_CODES:
            raise _Unsupported() from error
        if code == "OperationTimedOut":  # too large to copy within the server timeout: stream it in blocks
            raise _SourceUnreadable(foreign=False) from error
        source_status = error.response.headers.get("x-ms-copy-source-status-code", "") if error.response else ""
        if source_status.startswith("5"):
            raise StoreReadError(f"The DICOM store answered {source_status} when the destination copied the "
                                 "instance from it.") from error
        if code == "Md5Mismatch":
            raise IntegrityError("The destination found that the copy's MD5 differs from the MD5 the source "
                                 "announced.") from error
        if not is_client_error(error):
            raise error
        if error.status_code == 401 or code in _DESTINATION_AUTH_CODES:
            async with self._destination.guard():
                raise error
        if code == "ContainerNotFound":  # the destination's container, or (on the emulator) the source's
            async with self._destination.guard():
                await self._container.get_container_properties()
            raise _SourceUnreadable(foreign=True) from error
        raise _SourceUnreadable(foreign=source_status in ("401", "403")) from error
