"""Copies one instance into the destination: server-side from a URL when the destination can read the store, else streamed."""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobClient, ContainerClient

from shared.cloud.clients import STREAM_BLOCK_BYTES
from shared.cloud.storage_errors import error_code, is_client_error, status_text
from shared.destination.blob_destination import BlobDestination, result_blob_name
from shared.identifiers import DicomIdentifier
from shared.source.protocol import DicomStore, InstanceContent

AUTO, PUT_FROM_URL, COPY_FROM_URL, STREAM = "auto", "put-from-url", "copy-from-url", "stream"
SERVER_SIDE_MODES = (PUT_FROM_URL, COPY_FROM_URL)
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


async def stream_instance(content: InstanceContent, blob: BlobClient) -> None:
    """Upload the content block by block (4 MiB at a time), or in one put when it is smaller than a block."""
    buffer = bytearray()
    block_ids = []
    async for chunk in content.chunks():
        buffer += chunk
        while len(buffer) >= STREAM_BLOCK_BYTES:
            block_ids.append(f"{len(block_ids):06d}")
            await blob.stage_block(block_ids[-1], bytes(buffer[:STREAM_BLOCK_BYTES]))
            del buffer[:STREAM_BLOCK_BYTES]
    if not block_ids:
        await blob.upload_blob(bytes(buffer), overwrite=True)
        return
    if buffer:
        block_ids.append(f"{len(block_ids):06d}")
        await blob.stage_block(block_ids[-1], bytes(buffer))
    await blob.commit_block_list(block_ids)


class InstanceCopier:
    """Copies instances in the operation's copy mode; in `auto` it probes, one copy at a time, until it knows.

    Probing tries Put Blob From URL, then Copy Blob From URL, then streaming, and settles on the first that works
    (a fault answer while probing rules a mode out: the emulator answers 500 to Put Blob From URL with a SAS).
    A server-side copy the destination cannot make from this source (too large, unreadable, or not within the
    server timeout every destination request carries) is streamed instead, 4 MiB blocks at a time.
    """

    def __init__(self, store: DicomStore, destination: BlobDestination, container: ContainerClient,
                 operation_id: str, mode: str):
        self._store = store
        self._destination = destination
        self._container = container
        self._operation_id = operation_id
        self.mode = mode
        self._probing = asyncio.Lock()

    async def copy(self, instance: DicomIdentifier) -> None:
        """Copy one instance; InstanceUnavailableError when the store has lost it, refusals as DestinationRefusedError."""
        if self.mode == AUTO:
            async with self._probing:
                if self.mode == AUTO:
                    self.mode = await self._probe(instance) or AUTO
                    return
        if self.mode in SERVER_SIDE_MODES:
            try:
                await self._server_side(self.mode, instance)
                return
            except _Unsupported:
                logging.debug("The destination does not support %s; streaming instead.", self.mode)
            except _SourceUnreadable:
                pass
        await self._stream(instance)

    async def _probe(self, instance: DicomIdentifier) -> Optional[str]:
        for mode in SERVER_SIDE_MODES:
            try:
                await self._server_side(mode, instance, retry_total=0)
                return mode
            except _Unsupported:
                continue
            except HttpResponseError as fault:  # a fault while probing rules this mode out, not the export
                logging.info("Probing %s failed with %s; trying the next copy mode.", mode, status_text(fault))
                continue
            except _SourceUnreadable as unreadable:
                await self._stream(instance)
                return STREAM if unreadable.foreign else None
        await self._stream(instance)
        return STREAM

    def _blob_for(self, instance: DicomIdentifier) -> BlobClient:
        return self._container.get_blob_client(result_blob_name(self._operation_id, instance))

    async def _stream(self, instance: DicomIdentifier) -> None:
        content = await self._store.open_instance(instance)
        async with self._destination.guard():
            await stream_instance(content, self._blob_for(instance))

    async def _server_side(self, mode: str, instance: DicomIdentifier, **options) -> None:
        url = await self._store.source_url(instance)
        if url is None:
            raise _Unsupported()
        blob = self._blob_for(instance)
        try:
            if mode == PUT_FROM_URL:
                await blob.upload_blob_from_url(url, overwrite=True, **options)
            else:
                await blob.start_copy_from_url(url, requires_sync=True, **options)
        except HttpResponseError as error:
            await self._classify(error)

    async def _classify(self, error: HttpResponseError) -> None:
        code = error_code(error)
        if error.status_code == 501 or code in _UNSUPPORTED_CODES:
            raise _Unsupported() from error
        if code == "OperationTimedOut":  # too large to copy within the server timeout: stream it in blocks
            raise _SourceUnreadable(foreign=False) from error
        if not is_client_error(error):
            raise error
        if error.status_code == 401 or code in _DESTINATION_AUTH_CODES:
            async with self._destination.guard():
                raise error
        if code == "ContainerNotFound":  # the destination's container, or (on the emulator) the source's
            async with self._destination.guard():
                await self._container.get_container_properties()
            raise _SourceUnreadable(foreign=True) from error
        source_status = error.response.headers.get("x-ms-copy-source-status-code") if error.response else None
        raise _SourceUnreadable(foreign=source_status in ("401", "403")) from error

