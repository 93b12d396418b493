"""The operation's `manifest.jsonl`: one block of JSON lines per copied batch, committed once when the export ends.

A batch stages its block under an id made from its number, so a retried batch replaces its block rather than adding
one; the commit takes every block there is, in batch order, so each exported file is listed exactly once.
"""
from __future__ import annotations

import json
from typing import List

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import ContainerClient

from shared.destination.streamed_upload import StoredFile
from shared.identifiers import DicomIdentifier

MANIFEST_NAME = "manifest.jsonl"


def manifest_blob_name(operation_id: str) -> str:
    """Where an operation's manifest lives: `<operation id>/manifest.jsonl`."""
    return f"{operation_id}/{MANIFEST_NAME}"


def manifest_line(instance: DicomIdentifier, path: str, stored: StoredFile) -> bytes:
    """One manifest line: `{"identifier", "path", "size", "md5"}` in JSON with a newline."""
    return (json.dumps({"identifier": str(instance), "path": path, "size": stored.size, "md5": stored.md5})
            + "\n").encode()


def _block_id(batch_index: int) -> str:
    return f"batch-{batch_index:010d}"


async def stage_manifest_block(container: ContainerClient, operation_id: str, batch_index: int,
                               lines: List[bytes]) -> None:
    """Stage one batch's lines (none: nothing to stage) as that batch's block of the manifest."""
    if lines:
        blob = container.get_blob_client(manifest_blob_name(operation_id))
        await blob.stage_block(_block_id(batch_index), b"".join(lines))


async def commit_manifest(container: ContainerClient, operation_id: str) -> int:
    """Commit every block staged or committed so far, in batch order; return how many batches it lists."""
    blob = container.get_blob_client(manifest_blob_name(operation_id))
    try:
        committed, uncommitted = await blob.get_block_list("all")
    except ResourceNotFoundError:  # no block staged and no manifest yet
        committed, uncommitted = [], []
    ids = sorted({block.id for block in list(committed) + list(uncommitted)})
    await blob.commit_block_list([BlobBlock(block_id) for block_id in ids],
                                 content_settings=ContentSettings(content_type="application/x-ndjson"))
    return len(ids)
