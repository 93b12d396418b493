"""Times one export end to end through the host stand-in against a naive sequential copy loop, on one Azurite.

Usage: .venv/bin/python -m bench.export_throughput [--instances N] [--size BYTES] [--series-per-study K]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid

from azure.storage.blob import BlobServiceClient

from tests.azurite import Azurite
from tests.durable_host import DurableHost
from tests.export_client import export_body

PAYLOAD_TAG = b"DICM"


def _seed(service: BlobServiceClient, count: int, size: int, series_per_study: int) -> list:
    """Store `count` instances of `size` bytes in studies of `series_per_study` series of 10 instances."""
    store = service.get_container_client("dicom")
    store.create_container()
    body = b"\0" * 128 + PAYLOAD_TAG + os.urandom(max(size - 132, 0))
    studies, index = [], 0
    while index < count:
        study = f"1.2.826.0.1.{len(studies) + 1}"
        studies.append(study)
        for series in range(series_per_study):
            for sop in range(10):
                if index == count:
                    break
                store.upload_blob(f"{study}/{study}.{series}/{study}.{series}.{sop}.dcm", body)
                index += 1
    return studies


def _naive_copy(service: BlobServiceClient, count: int) -> float:
    """Download each stored instance and upload it, one at a time, as a user's first script would."""
    source, target = service.get_container_client("dicom"), service.get_container_client(f"naive-{uuid.uuid4().hex[:8]}")
    target.create_container()
    started = time.perf_counter()
    for blob in source.list_blobs():
        target.upload_blob(f"results/{blob.name}", source.download_blob(blob.name).readall(), overwrite=True)
    return time.perf_counter() - started


async def _service_export(host: DurableHost, azurite: Azurite, studies: list) -> tuple:
    body = export_body(studies, {"connectionString": azurite.connection_string, "blobContainerName": "export"})
    started = time.perf_counter()
    response = await host.request("POST", "/v2/export", json.dumps(body).encode(), {"Content-Type": "application/json"})
    operation_id = json.loads(response.get_body())["id"]
    instance = await host.run(operation_id)
    elapsed = time.perf_counter() - started
    status = json.loads((await host.request("GET", f"/v2/operations/{operation_id}")).get_body())
    return elapsed, instance, status


def main() -> None:
    """Seed, run both exports on the same data, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--series-per-study", type=int, default=4)
    args = parser.parse_args()
    azurite = Azurite().start()
    try:
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "dicom",
                           "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1",
                           "EXPORT_SEALING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.get_container_client("export").create_container()
        studies = _seed(service, args.instances, args.size, args.series_per_study)
        from function_app import app
        loop = asyncio.new_event_loop()
        host = loop.run_until_complete(DurableHost(app.get_functions()).start())
        elapsed, instance, status = loop.run_until_complete(_service_export(host, azurite, studies))
        naive = _naive_copy(service, args.instances)
        megabytes = args.instances * args.size / 1e6
        print(f"instances {args.instances} x {args.size} bytes in {len(studies)} studies; "
              f"settings: batch {os.environ.get('EXPORT_BATCH_SIZE', 100)}, "
              f"in flight {os.environ.get('EXPORT_BATCHES_IN_FLIGHT', 4)}, "
              f"copies/batch {os.environ.get('EXPORT_COPIES_PER_BATCH', 8)}")
        print(f"service export: {elapsed:.2f} s, {args.instances / elapsed:.0f} instances/s, "
              f"{megabytes / elapsed:.1f} MB/s; status {status['status']}, exported {status['results']['exported']}")
        print(f"naive loop:     {naive:.2f} s, {args.instances / naive:.0f} instances/s, {megabytes / naive:.1f} MB/s")
        print(f"ratio service/naive: {naive / elapsed:.2f}")
        print(f"generations {instance.generations + 1}, longest history {instance.longest_history} events, "
              f"replay {instance.replay_seconds:.3f} s, largest durable payload {host.largest_payload} bytes")
        from azure.durable_functions.models.utils.http_utils import _close_session
        loop.run_until_complete(host.stop())
        loop.run_until_complete(_close_session())
    finally:
        azurite.close()


if __name__ == "__main__":
    main()
