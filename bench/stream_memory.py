"""Measures how much a streamed copy of one large instance (default 1 GiB) grows the copying process's peak RSS.

The instance is pydicom-made: CT_small.dcm with a last, private OB element whose length is patched to the target
size, uploaded block by block so no process ever holds it whole. A child process then copies it with the service's
own copy path in forced `stream` mode and reports its peak RSS before and after; the parent checks the copy's
SHA-256 against the source's.

Usage: .venv/bin/python -m bench.stream_memory [--mib 1024]
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

import pydicom
from azure.storage.blob import BlobServiceClient
from pydicom.data import get_testdata_file

from bench.export_throughput import peak_rss_mib
from tests.azurite import Azurite

BLOCK = 4 * 1024 * 1024
STUDY, SERIES, SOP = "1.2.826.0.1.3680043.10.2.1", "1.2.826.0.1.3680043.10.2.2", "1.2.826.0.1.3680043.10.2.3"

def _header(value_length: int) -> bytes:
    """The file up to its last element's value, with that element (7FE1,1000 OB) declaring `value_length` bytes."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = STUDY, SERIES, SOP
    dataset.file_meta.MediaStorageSOPInstanceUID = SOP
    dataset.private_block(0x7FE1, "export bench", create=True).add_new(0x00, "OB", b"\0\0")
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    prefix = out.getvalue()[:-2]
    return prefix[:-4] + struct.pack("<I", value_length)

def _seed(service: BlobServiceClient, total: int) -> str:
    """Upload the large instance in 4 MiB blocks; return its SHA-256."""
    store = service.get_container_client("dicom")
    store.create_container()
    blob = store.get_blob_client(f"{STUDY}/{SERIES}/{SOP}.dcm")
    header = _header(total)
    digest, ids, remaining, first = hashlib.sha256(), [], total, True
    while remaining > 0 or first:
        piece = os.urandom(min(BLOCK, remaining))
        data = header + piece if first else piece
        first, remaining = False, remaining - len(piece)
        ids.append(f"{len(ids):06d}")
        blob.stage_block(ids[-1], data)
        digest.update(data)
    blob.commit_block_list(ids)
    return digest.hexdigest()

def _sha256(service: BlobServiceClient, container: str, name: str) -> str:
    digest = hashlib.sha256()
    for chunk in service.get_blob_client(container, name).download_blob(max_concurrency=1).chunks():
        digest.update(chunk)
    return digest.hexdigest()

async def _copy_in_this_process(operation_id: str, container_name: str) -> dict:
    """Child: warm up the clients, then copy the instance with the service's streamed copy path."""
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
    copier = InstanceCopier(store, destination, container, operation_id, "stream")
    started = time.perf_counter()
    progress = (await copy_batch(InstanceBatch.of([SourceInstance(DicomIdentifier(STUDY, SERIES, SOP))]), copier,
                                 ErrorLog(container, operation_id), 1)).progress
    elapsed = time.perf_counter() - started
    after = peak_rss_mib()
    return {"exported": progress.exported, "seconds": elapsed, "rss_before_mib": before, "rss_after_mib": after}

def main() -> None:
    """Seed the large instance, copy it in a child process, print the RSS growth and check the bytes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--child", nargs=2, metavar=("OPERATION_ID", "CONTAINER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_copy_in_this_process(*args.child))))
        return
    azurite = Azurite().start()
    try:
        env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "dicom",
               "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1"}
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        source_sha = _seed(service, args.mib * 1024 * 1024)
        container, operation_id = f"large-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        service.create_container(container)
        child = subprocess.run([sys.executable, "-m", "bench.stream_memory", "--child", operation_id, container],
                               env=env, capture_output=True, text=True, check=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        copied_sha = _sha256(service, container, f"{operation_id}/results/{STUDY}/{SERIES}/{SOP}.dcm")
        size = service.get_blob_client("dicom", f"{STUDY}/{SERIES}/{SOP}.dcm").get_blob_properties().size
        print(f"streamed copy of one {size / 2**20:.0f} MiB instance: {figures['seconds']:.1f} s "
              f"({size / 2**20 / figures['seconds']:.0f} MiB/s), exported {figures['exported']}")
        print(f"peak RSS of the copying process: {figures['rss_before_mib']:.0f} MiB before, "
              f"{figures['rss_after_mib']:.0f} MiB after: grew by "
              f"{figures['rss_after_mib'] - figures['rss_before_mib']:.0f} MiB (target: at most 64 MiB)")
        print(f"byte-identical: {copied_sha == source_sha} (sha256 {copied_sha[:16]}...)")
    finally:
        azurite.close()

if __name__ == "__main__":
    main()
