"""Measures how much a streamed copy of one large instance (default 1 GiB) grows the copying process's peak RSS.

The instance is pydicom-made: CT_small.dcm with a last, private OB element whose length is patched to the target
size (with --deidentify: its pixel data, so that is what is large), uploaded block by block so no process ever holds
it whole. A child process then copies it with the service's own copy path in forced `stream` mode (with
--deidentify: de-identified with the Basic Profile on the way) and reports its peak RSS before and after; the parent
checks the copy's SHA-256 against the source's (with --deidentify: of the bytes after the header, which must come
through untouched).

Usage: .venv/bin/python -m bench.stream_memory [--mib 1024] [--deidentify]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from typing import Tuple

import pydicom
from azure.storage.blob import BlobServiceClient
from pydicom.data import get_testdata_file

from bench.export_throughput import peak_rss_mib
from tests.azurite import Azurite

BLOCK = 4 * 1024 * 1024
STUDY, SERIES, SOP = "1.2.826.0.1.3680043.10.2.1", "1.2.826.0.1.3680043.10.2.2", "1.2.826.0.1.3680043.10.2.3"

def _header(value_length: int, pixel_data: bool) -> bytes:
    """The file up to its last element's value, with that element (7FE1,1000 OB, or with `pixel_data` the pixel
    data) declaring `value_length` bytes."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = STUDY, SERIES, SOP
    dataset.file_meta.MediaStorageSOPInstanceUID = SOP
    if pixel_data:
        dataset.PixelData = b"\0\0"
        for tag in [tag for tag in dataset.keys() if tag > 0x7FE00010]:  # CT_small has elements after its pixels
            del dataset[tag]
    else:
        dataset.private_block(0x7FE1, "export bench", create=True).add_new(0x00, "OB", b"\0\0")
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    prefix = out.getvalue()[:-2]
    return prefix[:-4] + struct.pack("<I", value_length)

def _seed(service: BlobServiceClient, total: int, pixel_data: bool) -> Tuple[str, int]:
    """Upload the large instance in 4 MiB blocks; return the SHA-256 of the bytes after its header, and the
    header's length."""
    store = service.get_container_client("dicom")
    store.create_container()
    blob = store.get_blob_client(f"{STUDY}/{SERIES}/{SOP}.dcm")
    header = _header(total, pixel_data)
    digest, ids, remaining, first = hashlib.sha256(), [], total, True
    while remaining > 0 or first:
        piece = os.urandom(min(BLOCK, remaining))
        data = header + piece if first else piece
        first, remaining = False, remaining - len(piece)
        ids.append(f"{len(ids):06d}")
        blob.stage_block(ids[-1], data)
        digest.update(piece)
    blob.commit_block_list(ids)
    return digest.hexdigest(), len(header)

def _tail_sha256(service: BlobServiceClient, container: str, name: str, tail: int) -> Tuple[str, str]:
    """The SHA-256 of a blob's last `tail` bytes, and its first 8 KiB's SOP Instance UID."""
    blob = service.get_blob_client(container, name)
    size = blob.get_blob_properties().size
    digest = hashlib.sha256()
    for chunk in blob.download_blob(offset=size - tail, length=tail, max_concurrency=1).chunks():
        digest.update(chunk)
    head = blob.download_blob(offset=0, length=min(size, 64 * 1024)).readall()
    sop = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True).SOPInstanceUID
    return digest.hexdigest(), str(sop)

async def _copy_in_this_process(operation_id: str, container_name: str, deidentify: bool) -> dict:
    """Child: warm up the clients, then copy the instance with the service's streamed copy path."""
    from shared.deid.deidentification import Deidentification
    from shared.destination.error_log import ErrorLog
    from shared.destination.validation import parse_destination
    from shared.export.batch_copy import copy_batch
    from shared.export.instance_copier import InstanceCopier
    from shared.export.payloads import InstanceBatch, SourceInstance
    from shared.identifiers import DicomIdentifier
    from shared.settings import ExportSettings, StoreSettings
    from shared.source.connect import connect_store
    settings = ExportSettings.from_environment()
    destination = parse_destination({"connectionstring": os.environ["AzureWebJobsStorage"],
                                     "blobcontainername": container_name}, settings.allowed_destinations)
    store, container = connect_store(StoreSettings.from_environment()), destination.shared_client()
    await container.get_container_properties()
    await container.upload_blob("warm-up", b"warm", overwrite=True)
    before = peak_rss_mib()
    deidentification = Deidentification.of_export({}) if deidentify else None
    copier = InstanceCopier(store, destination, container, operation_id, "stream", deidentification)
    path_id = deidentification.exported_as(DicomIdentifier(STUDY, SERIES, SOP)) if deidentification else None
    started = time.perf_counter()
    log = ErrorLog(container, operation_id)
    progress = (await copy_batch(InstanceBatch.of([SourceInstance(DicomIdentifier(STUDY, SERIES, SOP))]), copier,
                                 log, 1)).progress
    elapsed = time.perf_counter() - started
    after = peak_rss_mib()
    return {"exported": progress.exported, "seconds": elapsed, "rss_before_mib": before, "rss_after_mib": after,
            "errors": [line.decode() for line in log._lines],
            "path": f"{operation_id}/results/{path_id or DicomIdentifier(STUDY, SERIES, SOP)}.dcm"}

def main() -> None:
    """Seed the large instance, copy it in a child process, print the RSS growth and check the bytes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--deidentify", action="store_true", help="de-identify on the way (Basic Profile)")
    parser.add_argument("--child", nargs=2, metavar=("OPERATION_ID", "CONTAINER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_copy_in_this_process(*args.child, args.deidentify))))
        return
    azurite = Azurite().start()
    try:
        env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "dicom",
               "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1", "EXPORT_DEID_KEY": "a benchmark key of 32+ bytes!!"}
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        total = args.mib * 1024 * 1024
        source_sha, header_length = _seed(service, total, args.deidentify)
        container, operation_id = f"large-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        service.create_container(container)
        child = subprocess.run([sys.executable, "-m", "bench.stream_memory", "--child", operation_id, container,
                                *(["--deidentify"] if args.deidentify else [])],
                               env=env, capture_output=True, text=True, check=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        if figures["exported"] != 1:
            raise SystemExit(f"the instance was not exported: {figures['errors']}")
        copied_sha, sop = _tail_sha256(service, container, figures["path"], total)
        size = total + header_length
        kind = "de-identified" if args.deidentify else "streamed"
        print(f"{kind} copy of one {size / 2**20:.0f} MiB instance: {figures['seconds']:.1f} s "
              f"({size / 2**20 / figures['seconds']:.0f} MiB/s), exported {figures['exported']}"
              + (f"; SOP Instance UID {'replaced' if sop != SOP else 'NOT replaced'}" if args.deidentify else ""))
        print(f"peak RSS of the copying process: {figures['rss_before_mib']:.0f} MiB before, "
              f"{figures['rss_after_mib']:.0f} MiB after: grew by "
              f"{figures['rss_after_mib'] - figures['rss_before_mib']:.0f} MiB (target: at most 64 MiB)")
        print(f"the {total / 2**20:.0f} MiB after the header byte-identical: {copied_sha == source_sha} "
              f"(sha256 {copied_sha[:16]}...)")
    finally:
        azurite.close()

if __name__ == "__main__":
    main()
