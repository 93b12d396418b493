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
        self._buffer += data
        if self._state == "preamble":
            self._skip_preamble()
        if self._state == "headers":
            self._read_headers()
        if self._state == "body":
            return self._read_body()
        return b""

    def finish(self) -> None:
        """Declare the end of input; raise MultipartError unless the first part was complete."""
        if not self.complete:
            where = "in its body" if self._state == "body" else f"in its {self._state}"
            raise MultipartError(f"the multipart body ended {where}, before the first part was complete")

    def _skip_preamble(self) -> None:
        # The first delimiter opens the body, or follows CRLF after a preamble.
        if self._buffer.startswith(self._opening):
            start = 0
        else:
            found = self._buffer.find(b"\r\n" + self._opening)
            if found < 0:
                keep = len(self._opening) + 1
                self._buffer = self._buffer[-keep:] if len(self._buffer) > keep else self._buffer
                return
            start = found + 2
        line_end = self._buffer.find(b"\r\n", start)
        if line_end < 0:
            return
        if self._buffer[start + len(self._opening):line_end].strip(b" \t"):
            raise MultipartError("the first boundary line carries unexpected text")
        self._buffer = self._buffer[line_end + 2:]
        self._state = "headers"

    def _read_headers(self) -> None:
        if self._buffer.startswith(b"\r\n"):
            self._set_headers(b"", 2)
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEADER_BYTES:
                raise MultipartError(f"the first part's headers are longer than {_MAX_HEADER_BYTES} bytes")
            return
        self._set_headers(self._buffer[:end], end + 4)

    def _set_headers(self, block: bytes, consumed: int) -> None:
        headers: Dict[str, str] = {}
        for line in block.decode("latin-1").split("\r\n") if block else []:
            name, colon, value = line.partition(":")
            if not colon:
                raise MultipartError(f"malformed part header line '{line[:80]}'")
            headers[name.strip().lower()] = value.strip()
        self.headers = headers
        self._buffer = self._buffer[consumed:]
        self._state = "body"

    def _read_body(self) -> bytes:
        end = self._buffer.find(self._closing)
        if end >= 0:
            body, self._buffer = self._buffer[:end], b""
            self.complete = True
            self._state = "done"
            return body
        certain = len(self._buffer) - (len(self._closing) - 1)
        if certain <= 0:
            return b""
        body, self._buffer = self._buffer[:certain], self._buffer[certain:]
        return body
