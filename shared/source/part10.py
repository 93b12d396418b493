"""Recognises a DICOM Part 10 file by its 128-byte preamble and `DICM` prefix, as its bytes stream past."""
from __future__ import annotations

from typing import AsyncIterator

from shared.source.protocol import StoreReadError

PREFIX_END = 132


async def checked_part10(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass the chunks on unchanged; raise StoreReadError before the first one if the bytes are not a DICOM file."""
    head, checked = b"", False
    async for chunk in chunks:
        if not checked:
            head += chunk
            if len(head) < PREFIX_END:
                continue
            _check(head)
            chunk, checked = head, True
        yield chunk
    if not checked:
        _check(head)


def _check(head: bytes) -> None:
    if head[128:PREFIX_END] != b"DICM":
        start = head[:16].decode("latin-1").translate({c: "." for c in range(32)})
        raise StoreReadError("The DICOM store answered with a body that is not a DICOM file (no 'DICM' after the "
                             f"128-byte preamble; it starts with '{start}').")
