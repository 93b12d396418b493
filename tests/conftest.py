"""Session fixtures: one real Azurite, the app's settings pointing at it, the Durable host stand-in, and Orthanc."""
from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
import uuid
from typing import Dict, Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from tests.azurite import Azurite
from tests.dicom_samples import make_instance
from tests.durable_episodes import host_json_activity_limit
from tests.durable_host import DEFAULT_RETRY_INTERVAL_SCALE, DurableHost
from tests.fault_proxy import FaultProxy
from tests.orthanc import Orthanc, orthanc_missing

SEALING_KEY = base64.b64encode(bytes(range(32))).decode()
EMULATOR_HOSTS = "127.0.0.1,localhost"


def _loopback_only(real_getaddrinfo):
    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            loopback = ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
        except ValueError:
            loopback = name == "localhost"
        if not loopback:
            raise socket.gaierror(socket.EAI_NONAME, f"the tests resolve and reach loopback hosts only, not {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)
    return getaddrinfo


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    """No test resolves or connects to anything beyond this machine, whatever a bug would make the app try."""
    real = socket.getaddrinfo
    socket.getaddrinfo = _loopback_only(real)
    yield
    socket.getaddrinfo = real


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real, in-memory Azurite on free loopback ports for the whole session."""
    emulator = Azurite().start()
    yield emulator
    emulator.close()


@pytest.fixture(scope="session", autouse=True)
def app_settings(azurite: Azurite) -> Iterator[Dict[str, str]]:
    """The app settings the functions read, as local.settings.json would give them."""
    settings = {"AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "dicom",
                "EXPORT_SEALING_KEY": SEALING_KEY, "EXPORT_ALLOWED_DESTINATION_HOSTS": EMULATOR_HOSTS}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield settings
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One persistent event loop, as the worker has (the SDK keeps one aiohttp session per process)."""
    from shared.cloud.clients import close_all
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(close_all())
    event_loop.close()


@pytest.fixture(scope="session")
def indexed_functions():
    """`function_app.app.get_functions()`, called once per process as the worker does."""
    from function_app import app
    return app.get_functions()


@pytest.fixture(scope="session")
def host(indexed_functions, loop) -> Iterator[DurableHost]:
    """The host stand-in, serving the durable management API on loopback."""
    from azure.durable_functions.models.utils.http_utils import _close_session
    stand_in = loop.run_until_complete(DurableHost(indexed_functions).start())
    yield stand_in
    loop.run_until_complete(stand_in.stop())
    loop.run_until_complete(_close_session())


@pytest.fixture(autouse=True)
def fresh_hooks(host: DurableHost) -> Iterator[None]:
    """Each test starts with no fault-injection hook, host.json's activity limit and the default retry scale."""
    def reset() -> None:
        host.before_activity = None
        host.max_concurrent_activities = host_json_activity_limit()
        host.retry_interval_scale = DEFAULT_RETRY_INTERVAL_SCALE
    reset()
    yield
    reset()


@pytest.fixture(scope="session")
def blob_service(azurite: Azurite) -> BlobServiceClient:
    """A sync client on the emulator account, for arranging and checking blobs."""
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture(scope="session")
def store(blob_service: BlobServiceClient):
    """The DICOM store container (`dicom`), created once."""
    container = blob_service.get_container_client("dicom")
    if not container.exists():
        container.create_container()
    return container


@pytest.fixture
def destination(blob_service: BlobServiceClient):
    """A fresh, empty destination container for one test."""
    container = blob_service.get_container_client(f"export-{uuid.uuid4().hex[:12]}")
    container.create_container()
    return container


@pytest.fixture
def put_instance(store):
    """Store a generated DICOM instance at `<study>/<series>/<sop>.dcm` and return its bytes."""
    def put(study: str, series: str, sop: str) -> bytes:
        data = make_instance(study, series, sop)
        store.upload_blob(f"{study}/{series}/{sop}.dcm", data, overwrite=True)
        return data
    return put


@pytest.fixture
def proxy(loop, azurite):
    """A fault-injecting proxy in front of the session's Azurite (a test module may define one in front of another
    server under the same name)."""
    server = loop.run_until_complete(FaultProxy(f"http://127.0.0.1:{azurite.port}").start())
    yield server
    loop.run_until_complete(server.stop())


@pytest.fixture(scope="session")
def orthanc() -> Iterator[Orthanc]:
    """A real Orthanc with DICOMweb for the session; skipped when not installed, unless REQUIRE_ORTHANC=1."""
    missing = orthanc_missing()
    if missing:
        if os.environ.get("REQUIRE_ORTHANC") == "1":
            pytest.fail(f"REQUIRE_ORTHANC=1 but {missing}.")
        pytest.skip(f"DICOMweb tests need Orthanc: {missing}.")
    server = Orthanc().start()
    yield server
    server.close()
