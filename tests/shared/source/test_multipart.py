"""The incremental multipart/related reader: first part's body, whatever the chunking."""
import os

import pytest

from shared.source.multipart import FirstPartReader, MultipartError, multipart_boundary

BOUNDARY = b"a776c939-ffdc-4499-9175-ab3ac0f17d9f"


def _document(body: bytes, preamble: bytes = b"", part_headers: bytes = b"Content-Type: application/dicom\r\n",
              more_parts: bytes = b"") -> bytes:
    return (preamble + b"--" + BOUNDARY + b"\r\n" + part_headers + b"\r\n" + body + b"\r\n--" + BOUNDARY
            + more_parts + b"--\r\n")


def _read(document: bytes, sizes) -> tuple:
    reader, out, position, index = FirstPartReader(BOUNDARY), [], 0, 0
    while position < len(document):
        size = sizes[index % len(sizes)]
        out.append(reader.feed(document[position:position + size]))
        position, index = position + size, index + 1
    reader.finish()
    return b"".join(out), reader.headers


@pytest.mark.parametrize("sizes", [[1], [2], [3], [7], [13, 1, 5], [len(BOUNDARY) + 3], [65536]])
def test_body_is_exact_for_any_chunking(sizes):
    body = b"\r\n--" + BOUNDARY[:-1] + b"x" + os.urandom(3000) + b"\r\n-" + b"\r\n--" + BOUNDARY[:10]
    document = _document(body, part_headers=b"Content-Type: application/dicom\r\nContent-Length: 3100\r\n")
    assert _read(document, sizes) == (body, {"content-type": "application/dicom", "content-length": "3100"})


@pytest.mark.parametrize("sizes", [[1], [5], [4096]])
def test_preamble_and_later_parts_are_ignored(sizes):
    body = os.urandom(500)
    document = _document(body, preamble=b"ignore me\r\n",
                         more_parts=b"\r\nContent-Type: application/dicom\r\n\r\nSECOND\r\n--" + BOUNDARY)
    assert _read(document, sizes) == (body, {"content-type": "application/dicom"})


def test_a_held_back_tail_is_never_longer_than_the_delimiter():
    reader = FirstPartReader(BOUNDARY)
    assert reader.feed(b"--" + BOUNDARY + b"\r\n\r\n") == b""
    assert reader.headers == {}
    assert reader.feed(b"x" * 1000) == b"x" * (1000 - len(BOUNDARY) - 3)
    assert reader.feed(b"\r\n--" + BOUNDARY + b"--\r\n") == b"x" * (len(BOUNDARY) + 3)
    assert reader.complete


def test_an_empty_body_is_a_part_too():
    assert _read(_document(b""), [1]) == (b"", {"content-type": "application/dicom"})


@pytest.mark.parametrize("cut,message", [
    (10, "the multipart body ended in its preamble, before the first part was complete"),
    (len(BOUNDARY) + 10, "the multipart body ended in its headers, before the first part was complete"),
    (-12, "the multipart body ended in its body, before the first part was complete"),
])
def test_a_truncated_document_is_an_error(cut, message):
    reader = FirstPartReader(BOUNDARY)
    reader.feed(_document(b"0123456789" * 10)[:cut])
    with pytest.raises(MultipartError) as error:
        reader.finish()
    assert str(error.value) == message


def test_boundary_comes_from_the_content_type():
    assert multipart_boundary('multipart/related; type="application/dicom"; boundary=abc-1') == b"abc-1"
    assert multipart_boundary('multipart/related; boundary="a b:c"; type="application/dicom"') == b"a b:c"
    with pytest.raises(MultipartError) as error:
        multipart_boundary("application/dicom")
    assert str(error.value) == "expected a multipart Content-Type with a boundary, got 'application/dicom'"
