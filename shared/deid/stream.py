"""De-identifies a DICOM Part-10 file as its chunks stream past: a new header, then the pixel data verbatim."""
from __future__ import annotations

import io
from typing import AsyncIterator, List, Tuple

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from shared.deid.header import DeidContext, apply_profile, check_visual_identity, deidentify_dataset, profile_context
from shared.deid.options import DeidOptions
from shared.deid.part10_io import UNDEFINED, NeedMore, Tail, Truncated, Window, element_header
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.quiet import quiet_pydicom
from shared.deid.refusal import NotDeidentifiableError

__all__ = ["NotDeidentifiableError", "deidentified_chunks", "HEADER_CAP", "TRAILER_CAP"]

HEADER_CAP = 32 << 20        # the most bytes before Pixel Data (or of a whole file without it)
TRAILER_CAP = 16 << 20       # the most bytes of elements after Pixel Data, padding excepted
FIRST_READ = 64 << 10        # bytes received before the first parse; doubled on each retry
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
PADDING = 0xFFFCFFFC
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95")   # Deflated Explicit VR LE, JPIP Referenced Deflate


async def deidentified_chunks(chunks: AsyncIterator[bytes], options: DeidOptions,
                              pseudonyms: Pseudonyms) -> AsyncIterator[bytes]:
    """The de-identified file's bytes. Raises NotDeidentifiableError before yielding anything when the instance is
    refused (burned-in annotation, deflated, header over 32 MiB, unreadable); a stream that ends inside its pixel
    data or whose trailing elements exceed 16 MiB raises it after the header was yielded."""
    source = chunks.__aiter__()
    dataset, head, offset = await _read_header(source)
    implicit, little = dataset.original_encoding
    header, context = _new_header(dataset, options, pseudonyms)
    yield header
    tail = Tail(head, offset, source)
    del head
    try:
        async for piece in _tail(tail, implicit, little, context):
            yield piece
    except Truncated:
        raise NotDeidentifiableError("The instance ends inside its pixel data or a later element (the file is "
                                     "truncated); it is not exported.") from None


async def _read_header(source: AsyncIterator[bytes]) -> Tuple[Dataset, bytes, int]:
    """Receive and parse until pydicom has the whole header: (dataset, bytes received, offset of Pixel Data)."""
    parts: List[bytes] = []
    size, eof, target = 0, False, FIRST_READ
    while True:
        while size < target and not eof:
            try:
                chunk = await source.__anext__()
            except StopAsyncIteration:
                eof = True
            else:
                parts.append(chunk)
                size += len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts = [data]
        try:
            with quiet_pydicom():
                dataset, offset = _parse(data, eof)
        except NeedMore:
            if size > HEADER_CAP:
                raise NotDeidentifiableError(
                    f"The instance's header is larger than {HEADER_CAP >> 20} MiB (the elements before its pixel "
                    "data, or the whole file without pixel data), which is too large to de-identify; "
                    "it is not exported.") from None
            target = min(max(2 * target, size + 1), HEADER_CAP + FIRST_READ)
            continue
        if offset > HEADER_CAP:
            raise NotDeidentifiableError(
                f"The instance's header is larger than {HEADER_CAP >> 20} MiB (the elements before its pixel data, "
                "or the whole file without pixel data), which is too large to de-identify; it is not exported.")
        return dataset, data, offset


def _parse(data: bytes, eof: bool) -> Tuple[Dataset, int]:
    window = Window(data, eof)
    try:
        if window.read(132)[128:] != b"DICM":
            raise NotDeidentifiableError("The instance is not a DICOM file pydicom can read (no 'DICM' prefix).")
        meta = read_dataset(window, is_implicit_VR=False, is_little_endian=True,
                            stop_when=lambda tag, vr, length: tag.group != 2)
        syntax = str(meta.get("TransferSyntaxUID", "") or "")
        if syntax in DEFLATED:   # pydicom would inflate the whole file into memory to read its header
            raise NotDeidentifiableError(
                f"The instance's transfer syntax is deflated ({syntax}), which cannot be de-identified as a "
                "stream; it is not exported.")
        window.seek(0)
        dataset = pydicom.dcmread(window, stop_before_pixels=True)
        if window.short_read:
            raise NotDeidentifiableError("The instance is not a DICOM file pydicom can read (it is truncated).")
        missing = [k for k in ("SOPClassUID", "SOPInstanceUID") if k not in dataset] + \
            [k for k in ("TransferSyntaxUID",) if k not in dataset.file_meta]
        if missing:
            raise NotDeidentifiableError(
                f"The instance is not a DICOM file pydicom can read (it has no {' and no '.join(missing)}).")
        return dataset, window.tell()
    except (NeedMore, NotDeidentifiableError):
        raise
    except Exception as error:   # pydicom raises many kinds on damaged input
        raise NotDeidentifiableError(
            f"The instance is not a DICOM file pydicom can read ({type(error).__name__}).") from None


def _new_header(dataset: Dataset, options: DeidOptions, pseudonyms: Pseudonyms) -> Tuple[bytes, DeidContext]:
    """The de-identified header's bytes, and the context the elements after the pixel data are treated with."""
    try:
        with quiet_pydicom():
            check_visual_identity(dataset, options)
            context = profile_context(dataset, options, pseudonyms)
            deidentify_dataset(dataset, options, pseudonyms, context)
    except NotDeidentifiableError:
        raise
    except Exception as error:   # pydicom converts values lazily: a damaged value shows only here
        raise NotDeidentifiableError(
            f"The instance is not a DICOM file pydicom can read ({type(error).__name__}).") from None
    with quiet_pydicom():
        return _encode_header(dataset), context


def _encode_header(dataset: Dataset) -> bytes:
    """Preamble (zeroed: it can hold other data), meta with its group length recomputed, the dataset as encoded."""
    dataset.preamble = b"\0" * 128
    out = io.BytesIO()
    try:
        pydicom.dcmwrite(out, dataset, enforce_file_format=True)
    except Exception as error:
        raise NotDeidentifiableError(
            f"The instance's de-identified header could not be encoded ({type(error).__name__}); "
            "it is not exported.") from None
    return out.getvalue()


async def _tail(tail: Tail, implicit: bool, little: bool, context: DeidContext) -> AsyncIterator[bytes]:
    """Pixel elements verbatim, padding dropped, other trailing elements de-identified and re-encoded."""
    trailer = bytearray()
    while (header := await element_header(tail, implicit, little, allow_eof=True)) is not None:
        tag, raw, length, vr = header
        if tag in PIXEL_TAGS:
            if trailer:
                yield _encode_trailer(trailer, implicit, little, context)
                trailer = bytearray()
            yield raw
            tail.start_copy()
            if length != UNDEFINED:
                async for piece in tail.skip(length):
                    yield piece
            else:
                async for piece in _pass_items(tail, little):
                    yield piece
            tail.stop_copy()
            for piece in tail.drain():
                yield piece
        elif tag == PADDING and length != UNDEFINED:
            async for _ in tail.skip(length):
                pass
        else:
            trailer += raw
            if length == UNDEFINED:
                await _read_undefined(tail, implicit or vr == b"UN", little, trailer)
            else:
                await _append(tail, length, trailer)
    if trailer:
        yield _encode_trailer(trailer, implicit, little, context)


async def _pass_items(tail: Tail, little: bool) -> AsyncIterator[bytes]:
    """Encapsulated pixel data: each item (header and value), then the sequence delimiter; all in copy mode."""
    while True:
        tag, _, length, _ = await element_header(tail, True, little)
        for piece in tail.drain():
            yield piece
        if tag == 0xFFFEE0DD:
            return
        if tag != 0xFFFEE000 or length == UNDEFINED:
            raise NotDeidentifiableError("The instance's encapsulated pixel data is malformed (an element other "
                                         "than an item before the sequence delimiter); it is not exported.")
        async for piece in tail.skip(length):
            yield piece


async def _read_undefined(tail: Tail, implicit: bool, little: bool, out: bytearray) -> None:
    """Append an undefined-length value (items up to the sequence delimiter) to `out`, bounded by TRAILER_CAP."""
    while True:
        tag, raw, length, _ = await element_header(tail, True, little)
        await _append(tail, 0, out)
        out += raw
        if tag == 0xFFFEE0DD:
            return
        if length != UNDEFINED:
            await _append(tail, length, out)
            continue
        while True:                                  # an item of undefined length: elements up to (FFFE,E00D)
            etag, eraw, elength, evr = await element_header(tail, implicit, little)
            await _append(tail, 0, out)
            out += eraw
            if etag == 0xFFFEE00D:
                break
            if elength == UNDEFINED:
                await _read_undefined(tail, implicit or evr == b"UN", little, out)
            else:
                await _append(tail, elength, out)


async def _append(tail: Tail, length: int, out: bytearray) -> None:
    if len(out) + length > TRAILER_CAP:   # length 0: only checks what is already there
        raise NotDeidentifiableError(
            f"The instance has more than {TRAILER_CAP >> 20} MiB of elements after its pixel data; "
            "it is not exported.")
    if length:
        out += await tail.exact(length)


def _encode_trailer(trailer: bytearray, implicit: bool, little: bool, context: DeidContext) -> bytes:
    """Parse the elements after the pixel data, de-identify them like the header, encode them again."""
    try:
        with quiet_pydicom():
            return _reencode_trailer(trailer, implicit, little, context)
    except NotDeidentifiableError:
        raise
    except Exception as error:
        raise NotDeidentifiableError(
            f"The instance's elements after its pixel data could not be read ({type(error).__name__}); "
            "it is not exported.") from None


def _reencode_trailer(trailer: bytearray, implicit: bool, little: bool, context: DeidContext) -> bytes:
    dataset = read_dataset(DicomBytesIO(bytes(trailer)), is_implicit_VR=implicit, is_little_endian=little)
    if any(tag.group < 0x7FE0 for tag in dataset.keys()):   # e.g. a BurnedInAnnotation the header check never saw
        raise NotDeidentifiableError("The instance has elements out of tag order after its pixel data; "
                                     "it is not exported.")
    apply_profile(dataset, context)
    encoded = DicomBytesIO()
    encoded.is_implicit_VR, encoded.is_little_endian = implicit, little
    write_dataset(encoded, dataset)
    return encoded.getvalue()
