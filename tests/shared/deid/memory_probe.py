"""Streams a generated large instance through deidentified_chunks and prints the peak RSS growth, as JSON.

    .venv/bin/python -m tests.shared.deid.memory_probe /tmp/big.dcm 256 [chunk KiB]
Run in a process of its own: ru_maxrss is the process's peak, so nothing else may have run before it.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import struct
import sys
from typing import AsyncIterator

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.stream import deidentified_chunks

BLOCK = 1 << 20


def make_big(path: str, mib: int) -> str:
    """A native 16-bit MR file whose pixel data is `mib` MiB; returns sha256 of everything from the pixel element."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "BIG^TEST", "PID-BIG-1", "MR"
    ds.Rows = ds.Columns = 1024
    ds.NumberOfFrames = mib // 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    digest = hashlib.sha256()
    block = bytes(range(256)) * (BLOCK // 256)
    with open(path, "wb") as handle:
        pydicom.dcmwrite(handle, ds, enforce_file_format=True)
        header = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, mib * BLOCK)
        handle.write(header)
        digest.update(header)
        for _ in range(mib):
            handle.write(block)
            digest.update(block)
    return digest.hexdigest()


async def _file_chunks(path: str, size: int) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


async def _run(path: str, size: int) -> dict:
    pseudonyms, first, total, digest = Pseudonyms(b"memory probe key, 32 bytes long!"), None, 0, hashlib.sha256()
    async for piece in deidentified_chunks(_file_chunks(path, size), DeidOptions(), pseudonyms):
        if first is None:
            first = len(piece)
        else:
            digest.update(piece)
        total += len(piece)
    return {"header": first, "bytes_out": total, "tail_sha256": digest.hexdigest()}


def main(argv: list) -> None:
    path, mib = argv[0], int(argv[1])
    chunk = int(argv[2]) << 10 if len(argv) > 2 else 4 << 20
    expected = make_big(path, mib)
    asyncio.run(_run(get_testdata_file("CT_small.dcm"), chunk))     # warm up: imports, pydicom's dictionaries
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = asyncio.run(_run(path, chunk))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    os.remove(path)
    result.update(expected_sha256=expected, rss_growth_mib=(after - before) / 1024, bytes_in_pixels=mib * BLOCK)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
