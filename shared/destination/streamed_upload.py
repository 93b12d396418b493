"""Uploads a stream of bytes as one blob, 4 MiB blocks at a time, and commits it only if it is what was expected."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Optional

from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobClient

from shared.cloud.clients import STREAM_BLOCK_BYTES


class IntegrityError(Exception):
    """The bytes read do not match the size or MD5 the source announced; nothing was committed."""


@dataclass(frozen=True)
class StoredFile:
    """What a copy wrote: its size in bytes and its MD5 in base64 (as in Content-MD5; None when unknown)."""

    size: int
    md5: Optional[str]


def md5_base64(digest: bytes) -> str:
    """A raw MD5 digest as Content-MD5 writes it."""
    return base64.b64encode(digest).decode()


def _verify(size: int, md5: str, expected_size: Optional[int], expected_md5: Optional[str]) -> None:
    if expected_size is not None and size != expected_size:
        raise IntegrityError(f"The copy would have {size} bytes, but the source announced {expected_size}.")
    if expected_md5 is not None and md5 != expected_md5:
        raise IntegrityError(f"The copy's MD5 {md5} differs from the source's {expected_md5}.")


PutWhole = Callable[[bytes, str], Awaitable[None]]  # (the whole file, its base64 MD5): one Put Blob


async def upload_stream(chunks: AsyncIterator[bytes], blob: Callable[[], BlobClient],
                        expected_size: Optional[int] = None, expected_md5: Optional[str] = None,
                        put_whole: Optional[PutWhole] = None) -> StoredFile:
    """Stage 4 MiB blocks as they fill (one put when smaller), hashing on the way; commit only a verified whole.

    `blob` gives the destination blob's client, asked for only when needed; `put_whole`, when given, writes a file
    of one block instead of the client (with the MD5 and Content-Type below). The blob's Content-MD5 property is set
    to the MD5 of what was read. A size or MD5 that differs from what the source announced raises IntegrityError
    before anything becomes visible at the destination.
    """
    digest, size = hashlib.md5(), 0
    buffer = bytearray()
    block_ids = []
    client: Optional[BlobClient] = None
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        buffer += chunk
        while len(buffer) >= STREAM_BLOCK_BYTES:
            client = client or blob()
            block_ids.append(f"{len(block_ids):06d}")
            await client.stage_block(block_ids[-1], bytes(buffer[:STREAM_BLOCK_BYTES]))
            del buffer[:STREAM_BLOCK_BYTES]
    md5 = md5_base64(digest.digest())
    _verify(size, md5, expected_size, expected_md5)
    if not block_ids and put_whole:
        await put_whole(bytes(buffer), md5)
        return StoredFile(size, md5)
    client = client or blob()
    settings = ContentSettings(content_type="application/dicom", content_md5=digest.digest())
    if not block_ids:
        await client.upload_blob(bytes(buffer), overwrite=True, content_settings=settings)
    else:
        if buffer:
            block_ids.append(f"{len(block_ids):06d}")
            await client.stage_block(block_ids[-1], bytes(buffer))
        await client.commit_block_list(block_ids, content_settings=settings)
    return StoredFile(size, md5)
