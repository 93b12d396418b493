"""The bare loops `bench.dicomweb_throughput` compares the service with, and the CPU meters it reads.

(b) `naive_loop`: one instance at a time, retrieve it whole with urllib, then upload it with azure-storage-blob.
(c) `bare_loop`: `in_flight` WADO-RS retrieves at once on one aiohttp session, each part's body streamed, as it
    arrives, as the body of one Put Blob (aiohttp too, the destination authorized by a container SAS signed before the
    clock starts, the length taken from the part's Content-Length): no MD5, no DICM check, no retries, no SDK.
(d) `bare_loop(upload=None)`: the same retrieves, read and discarded: what Orthanc serves to this client.
"""
from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Dict, List, Optional, Sequence, Tuple

import aiohttp
from azure.storage.blob import BlobServiceClient, ContainerClient, ContainerSasPermissions, generate_container_sas
from azure.storage.blob._shared.constants import X_MS_VERSION

from shared.identifiers import DicomIdentifier
from shared.source.dicomweb_store import WADO_ACCEPT
from shared.source.multipart import FirstPartReader, multipart_boundary

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) so far, from /proc/stat."""
    with open("/proc/stat", "rb") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS


class CpuMeter:
    """CPU seconds used over a run by this process (`time.process_time()`), by each of some other processes, and by
    everything else on the machine (`rest`: the kernel's own work and any process not named)."""

    def __init__(self, others: Dict[str, int]):
        self._others = others

    def __enter__(self) -> "CpuMeter":
        self.restart()
        return self

    def restart(self) -> None:
        """Start counting again from now (after a run's untimed preparation)."""
        self._start = (time.perf_counter(), time.process_time(), machine_busy_seconds(),
                       {name: process_cpu_seconds(pid) for name, pid in self._others.items()})

    def __exit__(self, *exc) -> None:
        wall, mine, busy, others = self._start
        self.wall, self.python = time.perf_counter() - wall, time.process_time() - mine
        self.others = {name: process_cpu_seconds(pid) - others[name] for name, pid in self._others.items()}
        self.rest = machine_busy_seconds() - busy - self.python - sum(self.others.values())

    def line(self, label: str, count: int, megabytes: float) -> str:
        """The run's rate, and each process's CPU per instance and cores kept busy."""
        per = "  ".join(f"{name} {1000 * seconds / count:.2f}" for name, seconds in self.others.items())
        return (f"{label:<31} {self.wall:6.2f} s {count / self.wall:6.1f}/s {megabytes / self.wall:6.1f} MB/s  "
                f"CPU ms/instance: python {1000 * self.python / count:.2f}  {per}  cores: {self.cores()}")

    def cores(self) -> str:
        """Each process's CPU over the run ÷ its wall time: how many of the machine's cores it kept busy."""
        shares = {"python": self.python, **self.others, "rest": self.rest}
        return ", ".join(f"{name} {seconds / self.wall:.2f}" for name, seconds in shares.items())


def container_sas(service: BlobServiceClient, name: str) -> Tuple[str, str]:
    """Create container `name` and return its URL and a SAS to write to it (signed now, before any clock starts)."""
    service.create_container(name)
    sas = generate_container_sas(service.account_name, name, account_key=service.credential.account_key,
                                 permission=ContainerSasPermissions(write=True, create=True),
                                 expiry=datetime.now(timezone.utc) + timedelta(hours=2))
    return f"{service.url.rstrip('/')}/{name}", sas


def instance_path(instance: DicomIdentifier) -> str:
    return f"/studies/{instance.study}/series/{instance.series}/instances/{instance.sop}"


def naive_loop(dicomweb_url: str, instances: List[DicomIdentifier], container: ContainerClient) -> float:
    """(b): retrieve each instance with WADO-RS and upload it to `results/<study>/<series>/<sop>.dcm`, one at a
    time; returns the elapsed seconds."""
    started = time.perf_counter()
    for instance in instances:
        request = urllib.request.Request(dicomweb_url + instance_path(instance), headers={"Accept": WADO_ACCEPT})
        with urllib.request.urlopen(request) as response:
            reader = FirstPartReader(multipart_boundary(response.headers["Content-Type"]))
            body = reader.feed(response.read())
            reader.finish()
        container.upload_blob(f"results/{instance}.dcm", body, overwrite=True)
    return time.perf_counter() - started


async def _part(response: aiohttp.ClientResponse) -> Tuple[int, AsyncIterator[bytes]]:
    """The first part's Content-Length and its body as it arrives (what follows the part is read and dropped)."""
    head = b""
    async for data in response.content.iter_any():
        head += data
        end = head.find(b"\r\n\r\n", head.find(b"\r\n") + 2)
        if end >= 0:
            break
    else:
        raise RuntimeError("the answer ended before its first part's headers")
    headers = dict(line.split(b":", 1) for line in head[:end].split(b"\r\n")[1:])
    length = int({name.strip().lower(): value for name, value in headers.items()}[b"content-length"])
    rest = head[end + 4:]

    async def body() -> AsyncIterator[bytes]:
        left = length
        if rest:
            yield rest[:left]
            left -= min(len(rest), left)
        async for data in response.content.iter_any():
            if left > 0:
                yield data[:left] if len(data) > left else data
                left -= min(len(data), left)
        if left:
            raise RuntimeError(f"the part ended {left} bytes short")
    return length, body()


async def bare_loop(dicomweb_url: str, instances: Sequence[DicomIdentifier], upload: Optional[Tuple[str, str]],
                    in_flight: int = 16) -> float:
    """(c) with `upload` = (container URL, container SAS): retrieve and Put Blob each instance, streamed; (d) with
    `upload` None: retrieve and discard. Returns the elapsed seconds."""
    semaphore = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=2 * in_flight, limit_per_host=2 * in_flight)
    wado = {"Accept": WADO_ACCEPT, "Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def one(instance: DicomIdentifier) -> None:
            async with semaphore:
                async with session.get(dicomweb_url + instance_path(instance), headers=wado) as response:
                    if response.status != 200:
                        raise RuntimeError(f"WADO-RS answered {response.status}")
                    if upload is None:
                        async for _ in response.content.iter_any():
                            pass
                        return
                    length, body = await _part(response)
                    url = f"{upload[0]}/results/{instance}.dcm?{upload[1]}"
                    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": X_MS_VERSION,
                               "Content-Type": "application/dicom", "Content-Length": str(length)}
                    async with session.put(url, data=body, headers=headers) as put:
                        await put.read()
                        if put.status != 201:
                            raise RuntimeError(f"Put Blob answered {put.status}")
        started = time.perf_counter()
        await asyncio.gather(*(one(instance) for instance in instances))
        return time.perf_counter() - started
