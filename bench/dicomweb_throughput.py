"""Seeds a real Orthanc and times, on the same data: (a) this service's export from it, (b) a naive loop, (c) a bare
asyncio loop, (d) Orthanc's own limit.

(a)  POST → the real orchestrator and activities through the host stand-in the tests use → completed, naming the
     studies (resolved by QIDO-RS listings); (a') the same naming every instance (no listing, like the loops);
(b)  one instance at a time: WADO-RS retrieve, then upload (`bench.dicomweb_loops.naive_loop`);
(c)  the bare limit: 16 WADO-RS retrieves in flight on one aiohttp session, each streamed into one Put Blob as it is
     read (container SAS, no SDK, no MD5, no checks, no retries);
(d)  the same 16 retrieves in flight, read and discarded: what Orthanc serves, with no upload at all.
Runs go in --order (default d c b a a'), each on a fresh Azurite of its own (in memory), so that no run works among what an
earlier one stored. Python CPU per instance is this process's `time.process_time()` over a run ÷
instances ((a)'s includes the host stand-in and the orchestrator, which run in this process); Orthanc's and Azurite's
come from /proc; "cores" is each process's CPU over a run ÷ its wall time (2.00 in all saturates this 2-core machine).

Usage: .venv/bin/python -m bench.dicomweb_throughput [--instances N] [--size BYTES] [--series-per-study K]
           [--order dcbai] [--in-flight M] [--own-storage shared|separate] [--orthanc NAME=JSON ...] [--profile FILE]
  --order      which runs, in which order: d, c, b, a (studies named), i (a', instances named)
  --own-storage  the service's own storage (AzureWebJobsStorage: its working files, leases, manifests) on the
               destination's Azurite (default, as a single emulator) or on an Azurite of its own (as in Azure, where
               it is another account), whose CPU is then printed apart
  --orthanc    an Orthanc configuration option for this run, e.g. --orthanc HttpThreadsCount=8
  --profile    run (a) and (a') under cProfile and write the stats to FILE (FILE.instances for (a'))
`seed_orthanc` is meant to be reused by a service-side measurement on the same data.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

from azure.storage.blob import BlobServiceClient

from bench.dicomweb_loops import CpuMeter, bare_loop, container_sas, naive_loop
from bench.export_throughput import SEALING_KEY, service_export, shut_down
from shared.identifiers import DicomIdentifier
from tests.azurite import Azurite
from tests.dicom_samples import make_instance, make_large_instance
from tests.durable_host import DurableHost
from tests.orthanc import Orthanc

INSTANCES_PER_SERIES = 10
SEED_THREADS = 4
SERVICE_TIMEOUT_SECONDS = 600
LABELS = {"a": "(a) service, studies named", "i": "(a') service, instances named", "b": "(b) naive, one at a time",
          "c": "(c) bare loop, streamed", "d": "(d) retrieve and discard"}
SHORT = {"a": "(a)", "i": "(a')"}


def seed_orthanc(orthanc: Orthanc, count: int, size: int, series_per_study: int) -> List[DicomIdentifier]:
    """Store `count` pydicom instances of about `size` bytes (at least CT_small's ~39 KB), 10 to a series."""
    return _seed(orthanc, count, size, series_per_study)[0]


def _seed(orthanc: Orthanc, count: int, size: int, series_per_study: int) -> Tuple[List[DicomIdentifier], int]:
    base = len(make_instance("1.2", "1.2.3", "1.2.3.4"))
    run, per_study = uuid.uuid4().int % 10**12, INSTANCES_PER_SERIES * series_per_study
    instances = []
    for index in range(count):
        study = f"1.2.826.0.1.{run}.{index // per_study + 1}"
        series = f"{study}.{index % per_study // INSTANCES_PER_SERIES}"
        instances.append(DicomIdentifier(study, series, f"{series}.{index % INSTANCES_PER_SERIES}"))

    def store(instance: DicomIdentifier) -> int:
        data = make_large_instance(*instance.parts, size - base) if size > base else make_instance(*instance.parts)
        orthanc.upload(data)
        return len(data)
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        return instances, sum(pool.map(store, instances))


def _orthanc_settings(pairs: List[str]) -> dict:
    return {name: json.loads(value) for name, _, value in (pair.partition("=") for pair in pairs)}


class _Bench:
    """One Orthanc seeded once, the runs measured on it (each with a fresh Azurite), and their figures."""

    def __init__(self, args: argparse.Namespace, orthanc: Orthanc):
        self.args, self.orthanc = args, orthanc
        started = time.perf_counter()
        self.instances, self.bytes = _seed(orthanc, args.instances, args.size, args.series_per_study)
        self.seeded = time.perf_counter() - started
        os.environ.update({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": orthanc.dicomweb_url,
                           "EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1", "EXPORT_SEALING_KEY": SEALING_KEY})
        self.loop = asyncio.new_event_loop()
        from function_app import app
        self.host = self.loop.run_until_complete(DurableHost(app.get_functions()).start())
        self.meters: Dict[str, CpuMeter] = {}
        self.statuses: Dict[str, dict] = {}
        self.azurites: List[Azurite] = []

    def run(self, which: str) -> None:
        """One run on a fresh Azurite (the destination, and the service's own storage unless --own-storage separate
        gives that one of its own), stopped after the run with the pools that reached it: Azurites left running slow
        the later runs down (each Put Blob cost a later Azurite up to 40% more CPU, whatever the run)."""
        azurite = self._azurite()
        pids = {"orthanc": self.orthanc.pid, "azurite": azurite._process.pid}
        own = self._azurite() if self.args.own_storage == "separate" and which in SHORT else azurite
        if own is not azurite:
            pids["own storage"] = own._process.pid
        os.environ["AzureWebJobsStorage"] = own.connection_string
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        with CpuMeter(pids) as meter:
            self._run(which, azurite, service, meter)
        self.meters[which] = meter
        print(f"{LABELS[which]} done in {meter.wall:.1f} s", flush=True)
        from shared.cloud.clients import close_all
        self.loop.run_until_complete(close_all())
        while self.azurites:
            self.azurites.pop().close()

    def _azurite(self) -> Azurite:
        self.azurites.append(Azurite().start())
        return self.azurites[-1]

    def _run(self, which: str, azurite: Azurite, service: BlobServiceClient, meter: CpuMeter) -> None:
        url, in_flight, run = self.orthanc.dicomweb_url, self.args.in_flight, self.loop.run_until_complete
        if which == "d":
            run(bare_loop(url, self.instances, None, in_flight))
        elif which == "c":
            target = container_sas(service, "bare")
            meter.restart()
            run(bare_loop(url, self.instances, target, in_flight))
        elif which == "b":
            container = service.get_container_client("naive")
            container.create_container()
            meter.restart()
            naive_loop(url, self.instances, container)
        else:
            service.create_container("export")
            named = (sorted({instance.study for instance in self.instances}) if which == "a"
                     else [str(instance) for instance in self.instances])
            profiler = cProfile.Profile() if self.args.profile else None
            meter.restart()
            if profiler:
                profiler.enable()
            # bounded: an export that never ends (seen twice in about 20 runs: a step's lease poller still polling
            # after its cancel) fails the bench instead of holding the machine's bench lock forever
            _, _, self.statuses[which] = run(asyncio.wait_for(service_export(self.host, azurite, named),
                                                              SERVICE_TIMEOUT_SECONDS))
            if profiler:
                profiler.disable()
                profiler.dump_stats(self.args.profile + (".instances" if which == "i" else ""))

    def report(self) -> None:
        """Print each run's figures and the ratios."""
        count, megabytes = len(self.instances), self.bytes / 1e6
        print(f"{count} instances of {self.bytes / count:.0f} bytes in {len({i.study for i in self.instances})} "
              f"studies, seeded into Orthanc in {self.seeded:.1f} s; Orthanc settings "
              f"{json.dumps(_orthanc_settings(self.args.orthanc))}; bare loops: {self.args.in_flight} in flight; the "
              f"service's own storage: {self.args.own_storage}")
        for which, meter in self.meters.items():
            status = self.statuses.get(which)
            print(meter.line(LABELS[which], count, megabytes)
                  + (f"  -> {status['status']}, exported {status['results']['exported']}" if status else ""))
            if status and status["status"] != "succeeded":
                print(json.dumps(status)[:1500])
        walls = {which: meter.wall for which, meter in self.meters.items()}
        for service in ("a", "i"):
            if service in walls:
                ratios = [f"{SHORT[service]}/({loop}) {walls[loop] / walls[service]:.2f}"
                          for loop in "bcd" if loop in walls]
                print("ratios: " + "   ".join(ratios))
        if "b" in walls and "c" in walls:
            print(f"the bare loop's own lead: (c)/(b) {walls['b'] / walls['c']:.2f}")

    def close(self) -> None:
        """Close the store's session, the host stand-in and the pools."""
        from shared.settings import StoreSettings
        from shared.source.connect import connect_store

        async def close_store() -> None:
            await connect_store(StoreSettings.from_environment()).close()
        self.loop.run_until_complete(close_store())
        shut_down(self.loop, self.host)
        for azurite in self.azurites:
            azurite.close()


def main() -> None:
    """Start Orthanc and Azurite, seed, run what --order says on the same data, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--series-per-study", type=int, default=4)
    parser.add_argument("--order", default="dcbai")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--own-storage", choices=("shared", "separate"), default="shared")
    parser.add_argument("--orthanc", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    if set(args.order) - set(LABELS):
        parser.error(f"--order takes the letters {''.join(LABELS)}")
    orthanc = Orthanc(settings=_orthanc_settings(args.orthanc)).start()
    bench = None
    try:
        bench = _Bench(args, orthanc)
        for which in args.order:
            bench.run(which)
        bench.report()
    finally:
        try:
            if bench:
                bench.close()
        finally:
            orthanc.close()


if __name__ == "__main__":
    main()
