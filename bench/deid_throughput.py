"""Measures a de-identified export beside the plain streamed export of the same instances, in one run on one Azurite.

(s) the service's export with EXPORT_COPY_MODE=stream: every instance read from the store and written through the
    function, byte for byte (the path a de-identified export takes, without the de-identification);
(e) the same export with `"deidentify": {}`: the header of each instance parsed, de-identified and written again,
    the pixel data streamed through untouched.
Both run end to end (POST → the real orchestrator and activities through the test host stand-in → completed) and
print instances/s, MB/s and Python CPU per instance (this process's CPU time ÷ instances, host stand-in included).
Instances are CT_small.dcm (a real CT header, about 40 elements of identifying data) under fresh UIDs, its pixel data
replaced by --size bytes.

Usage: .venv/bin/python -m bench.deid_throughput [--instances N] [--size BYTES] [--series-per-study K]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import time

import pydicom
from azure.storage.blob import BlobServiceClient
from pydicom.data import get_testdata_file

from bench.export_throughput import SEALING_KEY, _uid, seed_store, service_export, shut_down, study_layout
from tests.azurite import Azurite
from tests.durable_host import DurableHost

DEID_KEY = "a benchmark de-identification key of 32+ bytes"


def pixel_template(size: int):
    """CT_small.dcm under placeholder UIDs with `size` bytes of pixel data; (bytes, placeholders)."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, series, sop = _uid(1, 0), _uid(2, 0), _uid(3, 0)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = study, series, sop
    dataset.file_meta.MediaStorageSOPInstanceUID = sop
    dataset.PixelData = bytes(range(256)) * (size // 256) + bytes(size % 256 + size % 2)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue(), (study.encode(), series.encode(), sop.encode())


def _report(label: str, count: int, seconds: float, cpu: float, megabytes: float, status: dict) -> str:
    return (f"{label:<36} {seconds:7.2f} s {count / seconds:7.0f} instances/s {megabytes / seconds:7.1f} MB/s  "
            f"CPU {1000 * cpu / count:.2f} ms/instance  -> {status['status']}, exported "
            f"{status['results']['exported']}, skipped {status['results']['skipped']}")


def main() -> None:
    """Seed, run (s) then (e) on the same instances, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--series-per-study", type=int, default=4)
    args = parser.parse_args()
    azurite = Azurite().start()
    try:
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "dicom",
                           "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1", "EXPORT_SEALING_KEY": SEALING_KEY,
                           "EXPORT_DEID_KEY": DEID_KEY, "EXPORT_COPY_MODE": "stream"})
        template, placeholders = pixel_template(args.size)
        studies, instances = study_layout(args.instances, args.series_per_study)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(seed_store(azurite.connection_string, instances, template, placeholders))
        BlobServiceClient.from_connection_string(azurite.connection_string).create_container("export")
        from function_app import app
        host = loop.run_until_complete(DurableHost(app.get_functions()).start())
        megabytes = args.instances * len(template) / 1e6
        lines = []
        for label, extra in (("(s) streamed export, as stored", {}),
                             ("(e) de-identified export", {"deidentify": {}})):
            cpu = time.process_time()
            elapsed, _, status = loop.run_until_complete(service_export(host, azurite, studies, extra))
            lines.append((elapsed, _report(label, args.instances, elapsed, time.process_time() - cpu, megabytes,
                                           status)))
        print(f"{args.instances} instances of {len(template)} bytes (CT_small.dcm's header, {args.size} bytes of "
              f"pixel data) in {len(studies)} studies; batches of 100, 32 copies in flight")
        for _, line in lines:
            print(line)
        print(f"ratio (e)/(s): {lines[0][0] / lines[1][0]:.2f}")
        shut_down(loop, host)
    finally:
        azurite.close()


if __name__ == "__main__":
    main()
