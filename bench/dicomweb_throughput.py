"""Seeds a real Orthanc and times, on the same data, this service's export from it and a naive WADO-RS → blob loop.

Usage: .venv/bin/python -m bench.dicomweb_throughput [--instances N] [--size BYTES] [--series-per-study K]
`seed_orthanc` and `naive_loop` are meant to be reused by a service-side measurement on the same data.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
import urllib.request
import uuid
from typing import List

from azure.storage.blob import BlobServiceClient, ContainerClient

from bench.export_throughput import SEALING_KEY, service_export, shut_down
from shared.identifiers import DicomIdentifier
from shared.source.dicomweb_store import WADO_ACCEPT
from shared.source.multipart import FirstPartReader, multipart_boundary
from tests.azurite import Azurite
from tests.dicom_samples import make_instance, make_large_instance
from tests.durable_host import DurableHost
from tests.orthanc import Orthanc

INSTANCES_PER_SERIES = 10


def seed_orthanc(orthanc: Orthanc, count: int, size: int, series_per_study: int) -> List[DicomIdentifier]:
    """Store `count` pydicom instances of about `size` bytes (at least CT_small's ~39 KB), 10 to a series."""
    base = len(make_instance("1.2", "1.2.3", "1.2.3.4"))
    instances: List[DicomIdentifier] = []
    run = uuid.uuid4().int % 10**12
    while len(instances) < count:
        study = f"1.2.826.0.1.{run}.{len(instances) // (INSTANCES_PER_SERIES * series_per_study) + 1}"
        for series_index in range(series_per_study):
            for sop_index in range(INSTANCES_PER_SERIES):
                if len(instances) == count:
                    return instances
                instance = DicomIdentifier(study, f"{study}.{series_index}", f"{study}.{series_index}.{sop_index}")
                data = (make_large_instance(*instance.parts, size - base) if size > base
                        else make_instance(*instance.parts))
                orthanc.upload(data)
                instances.append(instance)
    return instances


def naive_loop(dicomweb_url: str, instances: List[DicomIdentifier], container: ContainerClient) -> float:
    """Retrieve each instance with WADO-RS and upload it to `results/<study>/<series>/<sop>.dcm`, one at a time.

    Returns the elapsed seconds.
    """
    started = time.perf_counter()
    for instance in instances:
        request = urllib.request.Request(
            f"{dicomweb_url}/studies/{instance.study}/series/{instance.series}/instances/{instance.sop}",
            headers={"Accept": WADO_ACCEPT})
        with urllib.request.urlopen(request) as response:
            reader = FirstPartReader(multipart_boundary(response.headers["Content-Type"]))
            body = reader.feed(response.read())
            reader.finish()
        container.upload_blob(f"results/{instance}.dcm", body, overwrite=True)
    return time.perf_counter() - started


def main() -> None:
    """Start Orthanc and Azurite, seed, run (a) the service export and (b) the naive loop, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--series-per-study", type=int, default=4)
    args = parser.parse_args()
    orthanc, azurite = Orthanc().start(), Azurite().start()
    try:
        started = time.perf_counter()
        instances = seed_orthanc(orthanc, args.instances, args.size, args.series_per_study)
        seeded = time.perf_counter() - started
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_TYPE": "dicomweb",
                           "DICOMWEB_URL": orthanc.dicomweb_url, "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1",
                           "EXPORT_SEALING_KEY": SEALING_KEY})
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container("export")
        from function_app import app
        loop = asyncio.new_event_loop()
        host = loop.run_until_complete(DurableHost(app.get_functions()).start())
        studies = sorted({instance.study for instance in instances})
        exported, _, status = loop.run_until_complete(service_export(host, azurite, studies))
        container = service.get_container_client(f"naive-{uuid.uuid4().hex[:8]}")
        container.create_container()
        naive = naive_loop(orthanc.dicomweb_url, instances, container)
        megabytes = sum(blob.size for blob in container.list_blobs()) / 1e6
        print(f"seeded {len(instances)} instances of about {args.size} bytes into Orthanc in {seeded:.2f} s")
        print(f"(a) service export from Orthanc: {exported:.2f} s, {len(instances) / exported:.1f} instances/s, "
              f"{megabytes / exported:.1f} MB/s -> {status['status']}, exported {status['results']['exported']}")
        print(f"(b) naive WADO-RS → blob loop:   {naive:.2f} s, {len(instances) / naive:.1f} instances/s, "
              f"{megabytes / naive:.1f} MB/s")
        print(f"ratio (a)/(b): {naive / exported:.2f}")
        shut_down(loop, host)
    finally:
        orthanc.close()
        azurite.close()


if __name__ == "__main__":
    main()
