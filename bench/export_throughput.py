"""Measures on the same data: (a) the service's export, (b) a naive loop, (c) the SDK copy limit, (d) raw HTTP.

(a) POST → the real orchestrator and activities through the host stand-in the tests use → completed;
(b) what a user would write first: download each instance and upload it, one at a time, with azure-storage-blob;
(c) the fastest copy Azurite supports, bare: server-side Copy Blob From URL with asyncio, as many in flight as (a),
    for every instance;
(d) the raw HTTP limit: the same copy as one pre-signed request per instance (PUT with `x-ms-copy-source`, the
    source and the destination container authorized by SAS signed before timing) on a bare aiohttp session, as many
    in flight as (a).
Each run has an Azurite of its own, freshly seeded with the same instances, since Azurite's work per request grows
with all it holds; the previous run's is stopped first, as Azurites left running slow the later runs down.
Python CPU per instance is this process's CPU time (`time.process_time()`) over a run ÷ instances; for (a) it
includes the host stand-in and the orchestrator, which run in this process too.
Instances are pydicom-made: one template file whose UIDs are rewritten in place (same lengths), padded to --size.
The runs go (d), (c), (b), (a); none deletes anything its Azurite would collect later: Azurite's periodic
collection of unreferenced content (every 10 min) stalls it for minutes when thousands of deleted blobs' content is
waiting.

Usage: .venv/bin/python -m bench.export_throughput [--instances N] [--size BYTES] [--series-per-study K]
           [--instances-per-series J]
           [--request studies|instances] [--baseline-limit M] [--warm-up K] [--own-storage shared|separate]
           [--profile FILE]
  --request       what (a) names: the studies (default; resolved by listing) or every instance (no listing)
  --baseline-limit  (b) copies the first M instances when N is larger (default 5,000)
  --warm-up       instances (other studies, seeded beside) each run first goes through untimed, so that no run is
                  timed on an Azurite whose code paths are still cold (default 400; 50 for (b))
  --own-storage   the service's own storage (AzureWebJobsStorage: its working files, leases, manifests) on the
                  source's Azurite (default) or on one of its own, as in Azure, where it is another account
  --profile       write a cProfile of (a) to FILE (read it with `python -m pstats FILE`)
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import resource
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import List, Optional, Tuple

import aiohttp
import pydicom
from azure.storage.blob import (BlobSasPermissions, BlobServiceClient, ContainerSasPermissions, generate_blob_sas,
                                generate_container_sas)
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.blob._shared.constants import X_MS_VERSION
from pydicom.data import get_testdata_file

from tests.azurite import Azurite
from tests.durable_host import DurableHost
from tests.export_client import export_body

SEALING_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
UID_ROOT = "1.2.826.0.1.3680043.10.1"
SEED_IN_FLIGHT = 64


def _uid(kind: int, number: int) -> str:
    """A UID of fixed length, so rewriting one in a file keeps every element's length."""
    return f"{UID_ROOT}.{kind}.{10 ** 9 + number}"


def instance_template(size: int) -> Tuple[bytes, Tuple[bytes, bytes, bytes]]:
    """CT_small.dcm under placeholder UIDs, padded with a private OB element to about `size` bytes."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, series, sop = _uid(1, 0), _uid(2, 0), _uid(3, 0)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = study, series, sop
    dataset.file_meta.MediaStorageSOPInstanceUID = sop
    if size < 40_000:  # smaller than CT_small itself: keep the public header, drop the image and private tags
        del dataset.PixelData
        dataset.remove_private_tags()
    base = io.BytesIO()
    dataset.save_as(base, enforce_file_format=True)
    padding = max(size - len(base.getvalue()) - 32, 0)
    if padding:
        dataset.private_block(0x0009, "export bench", create=True).add_new(0x10, "OB", bytes(padding + padding % 2))
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue(), (study.encode(), series.encode(), sop.encode())


def study_layout(count: int, series_per_study: int, per_series: int = 10,
                 first_kind: int = 1) -> Tuple[List[str], List[Tuple[str, str, str]]]:
    """`count` instances as (study, series, sop) UIDs in studies of `series_per_study` series; and the study UIDs.
    Layouts of different `first_kind` (1, 4, 7) share no UID."""
    studies, instances = [], []
    while len(instances) < count:
        study = _uid(first_kind, len(studies) + 1)
        studies.append(study)
        for s in range(series_per_study):
            series = _uid(first_kind + 1, len(studies) * 1000 + s)
            for _ in range(per_series):
                if len(instances) < count:
                    instances.append((study, series, _uid(first_kind + 2, len(instances) + 1)))
    return studies, instances


async def seed_store(connection_string: str, instances, template: bytes, placeholders) -> None:
    """Upload every instance with 64 uploads in flight."""
    semaphore = asyncio.Semaphore(SEED_IN_FLIGHT)
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        store = service.get_container_client("dicom")
        await store.create_container()

        async def put(study: str, series: str, sop: str) -> None:
            async with semaphore:
                data = template
                for old, new in zip(placeholders, (study, series, sop)):
                    data = data.replace(old, new.encode())
                await store.upload_blob(f"{study}/{series}/{sop}.dcm", data)
        await asyncio.gather(*(put(*instance) for instance in instances))


def _naive_copy(service: BlobServiceClient, names: List[str]) -> float:
    """(b): download each instance and upload it, one at a time."""
    source = service.get_container_client("dicom")
    target = service.get_container_client(f"naive-{uuid.uuid4().hex[:8]}")
    target.create_container()
    started = time.perf_counter()
    for name in names:
        target.upload_blob(f"results/{name}", source.download_blob(name).readall(), overwrite=True)
    return time.perf_counter() - started


async def _bare_server_side_copy(connection_string: str, names: List[str], in_flight: int) -> float:
    """(c): Copy Blob From URL for each instance, `in_flight` at a time, nothing else."""
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        source, target = service.get_container_client("dicom"), service.get_container_client(f"bare-{uuid.uuid4().hex[:8]}")
        await target.create_container()
        semaphore = asyncio.Semaphore(in_flight)

        async def copy(name: str) -> None:
            async with semaphore:
                await target.get_blob_client(f"results/{name}").start_copy_from_url(
                    source.get_blob_client(name).url, requires_sync=True)
        started = time.perf_counter()
        await asyncio.gather(*(copy(name) for name in names))
        return time.perf_counter() - started


async def _raw_http_copy(connection_string: str, names: List[str], in_flight: int) -> Tuple[float, float]:
    """(d): one pre-signed Copy Blob From URL request per instance on a bare aiohttp session; (seconds, CPU seconds).

    Every URL is signed before the clock starts, so the loop measures only sending requests and reading answers."""
    service = BlobServiceClient.from_connection_string(connection_string)
    target_name = f"raw-{uuid.uuid4().hex[:8]}"
    target = service.get_container_client(target_name)
    target.create_container()
    key, account = service.credential.account_key, service.account_name
    expiry = datetime.now(timezone.utc) + timedelta(hours=2)
    target_sas = generate_container_sas(account, target_name, account_key=key, expiry=expiry,
                                        permission=ContainerSasPermissions(write=True, create=True))
    source = service.get_container_client("dicom")
    requests = []
    for name in names:
        source_sas = generate_blob_sas(account, "dicom", name, account_key=key,
                                       permission=BlobSasPermissions(read=True), expiry=expiry)
        requests.append((f"{target.url}/results/{name}?{target_sas}&timeout=60",
                         f"{source.url}/{name}?{source_sas}"))
    semaphore = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight + 16, limit_per_host=in_flight + 16)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        async def copy(url: str, copy_source: str) -> None:
            async with semaphore:
                headers = {"x-ms-copy-source": copy_source, "x-ms-requires-sync": "true",
                           "x-ms-version": X_MS_VERSION, "Content-Length": "0"}
                async with session.put(url, headers=headers, allow_redirects=False) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"raw copy answered {response.status}")
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(copy(url, copy_source) for url, copy_source in requests))
        return time.perf_counter() - started, time.process_time() - cpu


async def service_export(host: DurableHost, azurite: Azurite, values: List[str], extra: Optional[dict] = None) -> tuple:
    """(a): POST the export of `values` (with `extra` body fields), run it to its end through the host stand-in, read
    its final status."""
    body = {**export_body(values, {"connectionString": azurite.connection_string, "blobContainerName": "export"}),
            **(extra or {})}
    started = time.perf_counter()
    response = await host.request("POST", "/v2/export", json.dumps(body).encode(), {"Content-Type": "application/json"})
    operation_id = json.loads(response.get_body())["id"]
    instance = await host.run(operation_id)
    elapsed = time.perf_counter() - started
    status = json.loads((await host.request("GET", f"/v2/operations/{operation_id}")).get_body())
    return elapsed, instance, status


def shut_down(loop: asyncio.AbstractEventLoop, host: DurableHost) -> None:
    """Stop the host stand-in and close the durable client's and the storage clients' sessions."""
    from azure.durable_functions.models.utils.http_utils import _close_session

    from shared.cloud.clients import close_all
    loop.run_until_complete(host.stop())
    loop.run_until_complete(_close_session())
    loop.run_until_complete(close_all())


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _line(label: str, count: int, seconds: float, megabytes_each: float) -> str:
    return (f"{label:<34} {seconds:8.2f} s {count / seconds:8.0f} instances/s "
            f"{count * megabytes_each / seconds:8.1f} MB/s  ({count} instances)")


class CopiesInFlight:
    """Records when each of (a)'s server-side copies starts and ends (wrapping `CopyRequests.copy` for the run), to
    show how steadily the export keeps its copies in flight."""

    def __init__(self):
        from shared.export import copy_request
        self._module, self._events = copy_request, []
        self._original = copy_request.CopyRequests.copy

    def __enter__(self) -> "CopiesInFlight":
        original, events = self._original, self._events

        async def copy(requests, *args, **kwargs):
            events.append((time.perf_counter(), 1))
            try:
                return await original(requests, *args, **kwargs)
            finally:
                events.append((time.perf_counter(), -1))
        self._module.CopyRequests.copy = copy
        return self

    def __exit__(self, *exc_info) -> None:
        self._module.CopyRequests.copy = self._original

    def summary(self) -> str:
        """The mean number in flight from the first copy to the last, and the share of that time with none or few."""
        if not self._events:
            return "no server-side copy was made"
        events = sorted(self._events)
        level, last, seconds = 0, events[0][0], {}
        for moment, change in events:
            seconds[level] = seconds.get(level, 0.0) + moment - last
            level, last = level + change, moment
        span = events[-1][0] - events[0][0]

        def share(low: int, high: int) -> float:
            return 100 * sum(t for n, t in seconds.items() if low <= n <= high) / span
        return (f"copies in flight during (a): mean {sum(n * t for n, t in seconds.items()) / span:.1f} over "
                f"{span:.2f} s from the first copy to the last; none for {share(0, 0):.0f}% of that time, 1–15 for "
                f"{share(1, 15):.0f}%")


class FreshStores:
    """One freshly seeded Azurite per run, so every run meets the same stored data: Azurite's work per request grows
    with all it holds (deleted blobs' content included), which would otherwise favour whichever run goes first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, instances, warm_up, template: bytes, placeholders):
        self.loop, self.instances, self.warm_up = loop, instances, warm_up
        self.template, self.placeholders = template, placeholders
        self.azurites: List[Azurite] = []

    def empty(self) -> Azurite:
        """A new Azurite holding nothing, beside the run's other one."""
        self.azurites.append(Azurite().start())
        return self.azurites[-1]

    def seeded(self, count: int) -> Azurite:
        """A new Azurite holding the first `count` instances and the warm-up instances in container `dicom` (kept
        running until the next run's). The previous run's are stopped first: Azurites left running slow the later
        runs down (the DICOMweb benchmark measured up to 40% more Azurite CPU per request)."""
        self.close()
        azurite = self.empty()
        started = time.perf_counter()
        self.loop.run_until_complete(seed_store(azurite.connection_string, self.instances[:count] + self.warm_up,
                                                self.template, self.placeholders))
        print(f"seeded {count} + {len(self.warm_up)} instances in {time.perf_counter() - started:.1f} s", flush=True)
        return azurite

    def close(self) -> None:
        """Stop every Azurite."""
        while self.azurites:
            self.azurites.pop().close()


def main() -> None:
    """Seed, run (d), (c), (b) and (a), each on its own Azurite holding the same data; print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--series-per-study", type=int, default=4)
    parser.add_argument("--instances-per-series", type=int, default=10)
    parser.add_argument("--request", choices=("studies", "instances"), default="studies")
    parser.add_argument("--baseline-limit", type=int, default=5000)
    parser.add_argument("--own-storage", choices=("shared", "separate"), default="shared")
    parser.add_argument("--warm-up", type=int, default=400)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of (a) to FILE (pstats format)")
    args = parser.parse_args()
    template, placeholders = instance_template(args.size)
    studies, instances = study_layout(args.instances, args.series_per_study, args.instances_per_series)
    warm_studies, warm_up = study_layout(args.warm_up, args.series_per_study, args.instances_per_series, 4)
    warm_names = [f"{s}/{se}/{sop}.dcm" for s, se, sop in warm_up]
    loop = asyncio.new_event_loop()
    stores = FreshStores(loop, instances, warm_up, template, placeholders)
    try:
        os.environ.update({"DICOM_STORE_CONTAINER": "dicom", "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1",
                           "EXPORT_SEALING_KEY": SEALING_KEY})
        from shared.settings import ExportSettings
        settings = ExportSettings.from_environment()
        every = [f"{s}/{se}/{sop}.dcm" for s, se, sop in instances]
        names = every[:args.baseline_limit]

        azurite = stores.seeded(len(every))
        loop.run_until_complete(_raw_http_copy(azurite.connection_string, warm_names, settings.copies_in_flight))
        server_cpu = azurite.cpu_seconds()
        raw, raw_cpu = loop.run_until_complete(_raw_http_copy(azurite.connection_string, every,
                                                              settings.copies_in_flight))
        raw_server_cpu = azurite.cpu_seconds() - server_cpu
        print(f"(d) done in {raw:.1f} s", flush=True)
        azurite = stores.seeded(len(every))
        loop.run_until_complete(_bare_server_side_copy(azurite.connection_string, warm_names,
                                                       settings.copies_in_flight))
        bare = loop.run_until_complete(_bare_server_side_copy(azurite.connection_string, every,
                                                               settings.copies_in_flight))
        print(f"(c) done in {bare:.1f} s", flush=True)
        azurite = stores.seeded(len(names))
        _naive_copy(BlobServiceClient.from_connection_string(azurite.connection_string), warm_names[:50])
        naive = _naive_copy(BlobServiceClient.from_connection_string(azurite.connection_string), names)
        print(f"(b) done in {naive:.1f} s", flush=True)

        azurite = stores.seeded(len(every))
        own = stores.empty() if args.own_storage == "separate" else azurite
        os.environ.update({"AzureWebJobsStorage": own.connection_string, "DICOM_STORE": azurite.connection_string})
        BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
            "export").create_container()
        from function_app import app
        host = loop.run_until_complete(DurableHost(app.get_functions()).start())
        if warm_up:
            loop.run_until_complete(service_export(host, azurite, warm_studies if args.request == "studies"
                                                   else ["/".join(i) for i in warm_up]))
        rss_before = peak_rss_mib()
        server_cpu, own_cpu = azurite.cpu_seconds(), own.cpu_seconds()
        profiler = cProfile.Profile() if args.profile else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        with CopiesInFlight() as in_flight:
            elapsed, instance, status = loop.run_until_complete(service_export(
                host, azurite, studies if args.request == "studies" else ["/".join(i) for i in instances]))
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu = time.process_time() - cpu
        service_server_cpu, own_cpu = azurite.cpu_seconds() - server_cpu, own.cpu_seconds() - own_cpu
        rss_after = peak_rss_mib()
        print(f"(a) done in {elapsed:.1f} s", flush=True)
        size_mb = len(template) / 1e6
        rate = args.instances / elapsed
        print(f"{args.instances} instances of {len(template)} bytes (pydicom-made) in {len(studies)} studies of "
              f"{args.series_per_study} series of {args.instances_per_series}; each run on an Azurite of its own "
              f"seeded with the same instances, after the same run untimed over {len(warm_up)} others (50 for (b))")
        print(f"settings: batch {settings.batch_size}, batches in flight {settings.batches_in_flight}, copies per "
              f"batch {settings.copies_per_batch} ({settings.copies_in_flight} copies in flight), "
              f"copy mode {settings.copy_mode}; the service's own storage: {args.own_storage}")
        print(_line(f"(a) service export, {args.request} named", args.instances, elapsed, size_mb)
              + f"  -> {status['status']}, exported {status['results']['exported']}, "
                f"skipped {status['results']['skipped']}, percentComplete {status.get('percentComplete')}")
        print(_line("(b) naive sequential loop", len(names), naive, size_mb))
        print(_line("(c) bare server-side copy (limit)", len(every), bare, size_mb))
        print(_line("(d) raw HTTP copy (limit)", len(every), raw, size_mb))
        print(f"ratio (a)/(b): {rate / (len(names) / naive):.2f}   ratio (a)/(c): {rate / (len(every) / bare):.2f}"
              f"   ratio (a)/(d): {rate / (len(every) / raw):.2f}")
        print(f"Python CPU per instance: (a) {1000 * cpu / args.instances:.2f} ms, (d) "
              f"{1000 * raw_cpu / len(every):.2f} ms  (this process's CPU time ÷ instances; (a)'s includes the host "
              "stand-in and the orchestrator, which run in this process)")
        print(f"Azurite CPU per instance: (a) {1000 * service_server_cpu / args.instances:.2f} ms, (d) "
              f"{1000 * raw_server_cpu / len(every):.2f} ms  (the storage server's own work: on one core, its limit)")
        if own is not azurite:
            print(f"the service's own storage on an Azurite of its own: {1000 * own_cpu / args.instances:.2f} ms of "
                  "its CPU per instance during (a)")
        print(f"copy mode settled: {(instance.output or {}).get('copyMode')}; generations "
              f"{instance.generations + 1}; longest history per generation {instance.longest_history} events; "
              f"orchestrator replay {instance.replay_seconds:.3f} s ({100 * instance.replay_seconds / elapsed:.2f}% "
              f"of the export); largest durable payload {host.largest_payload} bytes")
        print(in_flight.summary())
        print(f"peak RSS of this process: {rss_before:.0f} MiB before the export, {rss_after:.0f} MiB after")
        shut_down(loop, host)
    finally:
        stores.close()


if __name__ == "__main__":
    main()
