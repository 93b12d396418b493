"""Reads the first part of a multipart/related body as it arrives (WADO-RS answers), never holding the whole part."""
from __future__ import annotations

from email.message import Message
from typing import Dict, Optional

_MAX_HEADER_BYTES = 64 * 1024


class MultipartError(ValueError):
    """The body is not the multipart/related document its Content-Type announced."""


def multipart_boundary(content_type: str) -> bytes:
    """The boundary parameter of a `multipart/...` Content-Type; raise MultipartError when there is none."""
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_maintype() != "multipart" or not isinstance(boundary, str) or not boundary:
        raise MultipartError(f"expected a multipart Content-Type with a boundary, got '{content_type}'")
    return boundary.encode("latin-1")


class FirstPartReader:
    """Incremental parser: `feed` network chunks, get back the first part's body bytes available so far.

    After the part's headers arrive, `headers` holds them (names lower-cased). Once the delimiter that ends the first
    part has been seen, `complete` is True and later input (further parts, epilogue) is ignored. Bytes that could be
    the start of a delimiter split across chunks are held back until the next chunk decides.
    """

    def __init__(self, boundary: bytes):
        self._opening = b"--" + boundary
        self._closing = b"\r\n--" + boundary
        self._buffer = b""
        self._state = "preamble"
        self.headers: Optional[Dict[str, str]] = None
        self.complete = False

    def feed(self, data: bytes) -> bytes:
        """Consume `data`; return the body bytes of the first part that are now certain (possibly empty)."""
        if self.complete:
            return b""
        self._buffer += data  # b"" + data is data itself: the first chunk is not copied here
        at = 0  # where the unread input starts: the steps move it instead of re-slicing the buffer
        if self._state == "preamble":
            at = self._skip_preamble()
        if self._state == "headers":
            at = self._read_headers(at)
        if self._state == "body":
            return self._read_body(at)
        self._buffer = self._buffer[at:]
        return b""

    def finish(self) -> None:
        """Declare the end of input; raise MultipartError unless the first part was complete."""
        if not self.complete:
            where = "in its body" if self._state == "body" else f"in its {self._state}"
            raise MultipartError(f"the multipart body ended {where}, before the first part was complete")

    def _skip_preamble(self) -> int:
        # The first delimiter opens the body, or follows CRLF after a preamble.
        if self._buffer.startswith(self._opening):
            start = 0
        else:
            found = self._buffer.find(b"\r\n" + self._opening)
            if found < 0:
                keep = len(self._opening) + 1
                return max(len(self._buffer) - keep, 0)
            start = found + 2
        line_end = self._buffer.find(b"\r\n", start)
        if line_end < 0:
            return start
        if self._buffer[start + len(self._opening):line_end].strip(b" \t"):
            raise MultipartError("the first boundary line carries unexpected text")
        self._state = "headers"
        return line_end + 2

    def _read_headers(self, at: int) -> int:
        if self._buffer.startswith(b"\r\n", at):
            return self._set_headers(b"", at + 2)
        end = self._buffer.find(b"\r\n\r\n", at)
        if end < 0:
            if len(self._buffer) - at > _MAX_HEADER_BYTES:
                raise MultipartError(f"the first part's headers are longer than {_MAX_HEADER_BYTES} bytes")
            return at
        return self._set_headers(self._buffer[at:end], end + 4)

    def _set_headers(self, block: bytes, body_start: int) -> int:
        headers: Dict[str, str] = {}
        for line in block.decode("latin-1").split("\r\n") if block else []:
            name, colon, value = line.partition(":")
            if not colon:
                raise MultipartError(f"malformed part header line '{line[:80]}'")
            headers[name.strip().lower()] = value.strip()
        self.headers = headers
        self._state = "body"
        return body_start

    def _read_body(self, at: int) -> bytes:
        end = self._buffer.find(self._closing, at)
        if end >= 0:
            body, self._buffer = self._buffer[at:end], b""
            self.complete = True
            self._state = "done"
            return body
        certain = len(self._buffer) - (len(self._closing) - 1)
        if certain <= at:
            self._buffer = self._buffer[at:]
            return b""
        body, self._buffer = self._buffer[at:certain], self._buffer[certain:]
        return body
