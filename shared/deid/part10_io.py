"""Byte plumbing for the stream: a retrying window for pydicom over received bytes, and a tail reader over chunks."""
from __future__ import annotations

import struct
from typing import AsyncIterator, List, Optional, Tuple

UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


class NeedMore(Exception):
    """pydicom read past the bytes received so far: receive more and parse again."""


class Truncated(Exception):
    """The stream ended inside an element."""


class Window:
    """A seekable read-only file over the bytes received so far; reading past them raises NeedMore (unless at EOF)."""

    def __init__(self, data: bytes, eof: bool):
        self._data, self._eof, self._pos = data, eof, 0
        self.short_read = False      # a read that got some but not all of its bytes: the file is truncated

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all the rest only at EOF)."""
        if size is None or size < 0:
            if not self._eof:
                raise NeedMore
            size = len(self._data) - self._pos
        end = self._pos + size
        if end > len(self._data) and not self._eof:
            raise NeedMore
        out = self._data[self._pos:end]
        if 0 < len(out) < size:
            self.short_read = True
        self._pos += len(out)
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move like a file."""
        base = 0 if whence == 0 else self._pos if whence == 1 else len(self._data)
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """The position, like a file."""
        return self._pos


class Tail:
    """Reads the rest of a stream after the header, and copies stretches of it verbatim without copying whole chunks.

    In copy mode every byte passed (read or skipped) is also output: a chunk passed whole is output as the very
    object received, and only the chunks where a copy starts or stops are sliced."""

    def __init__(self, head: bytes, offset: int, chunks: AsyncIterator[bytes]):
        self._chunk, self._pos, self._chunks = head, offset, chunks
        self._copying, self._mark = False, 0
        self._out: List[bytes] = []

    async def _advance(self) -> bool:
        """Move to the next non-empty chunk; False at the end of the stream."""
        if self._copying and self._mark < len(self._chunk):
            self._emit(self._mark, len(self._chunk))
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._chunk, self._pos, self._mark = b"", 0, 0
                return False
            if chunk:
                self._chunk, self._pos, self._mark = chunk, 0, 0
                return True

    def _emit(self, start: int, end: int) -> None:
        whole = start == 0 and end == len(self._chunk)
        self._out.append(self._chunk if whole else self._chunk[start:end])

    def drain(self) -> List[bytes]:
        """The bytes output (copy mode) since the last drain."""
        out, self._out = self._out, []
        return out

    def start_copy(self) -> None:
        """Output every byte from here on."""
        self._copying, self._mark = True, self._pos

    def stop_copy(self) -> None:
        """Stop outputting (what was passed so far is in drain())."""
        if self._copying and self._pos > self._mark:
            self._emit(self._mark, self._pos)
        self._copying = False

    async def exact(self, size: int, allow_eof: bool = False) -> bytes:
        """The next `size` bytes; b"" if the stream ended right here and allow_eof; Truncated otherwise."""
        parts = []
        while size:
            if self._pos == len(self._chunk) and not await self._advance():
                if allow_eof and not parts:
                    return b""
                raise Truncated
            take = min(size, len(self._chunk) - self._pos)
            parts.append(self._chunk[self._pos:self._pos + take])
            self._pos += take
            size -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def skip(self, size: int) -> AsyncIterator[bytes]:
        """Pass `size` bytes, yielding what copy mode outputs as it goes (nothing outside copy mode)."""
        while size:
            if self._pos == len(self._chunk) and not await self._advance():
                raise Truncated
            for piece in self.drain():
                yield piece
            take = min(size, len(self._chunk) - self._pos)
            self._pos += take
            size -= take


async def element_header(tail: Tail, implicit: bool, little: bool,
                         allow_eof: bool = False) -> Optional[Tuple[int, bytes, int, bytes]]:
    """(tag, raw header bytes, value length, VR or b"") of the next element, or None at the end of the stream."""
    raw = await tail.exact(8, allow_eof=allow_eof)
    if not raw:
        return None
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", raw[:4])
    if implicit or group == 0xFFFE:                      # items and delimiters have no VR in any syntax
        return group << 16 | element, raw, struct.unpack(order + "L", raw[4:8])[0], b""
    vr = bytes(raw[4:6])
    if vr in LONG_VRS:
        more = await tail.exact(4)
        return group << 16 | element, bytes(raw) + bytes(more), struct.unpack(order + "L", more)[0], vr
    return group << 16 | element, raw, struct.unpack(order + "H", raw[6:8])[0], vr
