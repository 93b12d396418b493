"""One connection pool per storage account per worker process, and the storage clients built on it, reused across activities."""
from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, TypeVar
from urllib.parse import urlsplit

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import BlobServiceClient

from shared.cloud.identity import app_identity
from shared.settings import StoreSettings

MIN_POOL_SIZE = 100
STREAM_BLOCK_BYTES = 4 * 1024 * 1024
CACHED_CLIENTS = 64
# Downloads and uploads move at most one 4 MiB block at a time, so no file is ever held whole in memory.
TRANSFER_OPTIONS = {"max_single_get_size": STREAM_BLOCK_BYTES, "max_chunk_get_size": STREAM_BLOCK_BYTES,
                    "max_single_put_size": STREAM_BLOCK_BYTES, "max_block_size": STREAM_BLOCK_BYTES}
C = TypeVar("C")


class _LoopClients:
    """The pools and clients of one event loop (the worker runs all async activities on one loop)."""

    def __init__(self) -> None:
        self.sessions: Dict[str, aiohttp.ClientSession] = {}
        self.clients: "OrderedDict[str, Any]" = OrderedDict()
        self.credentials: Dict[Optional[str], Any] = {}


_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients]" = weakref.WeakKeyDictionary()
_pool_size = MIN_POOL_SIZE


def set_pool_size(copies_in_flight: int) -> None:
    """Make pools created from now on at least as large as the copies in flight (never below 100)."""
    global _pool_size
    _pool_size = max(_pool_size, copies_in_flight + 16)


def _loop_clients() -> _LoopClients:
    loop = asyncio.get_running_loop()
    if loop not in _by_loop:
        _by_loop[loop] = _LoopClients()
    return _by_loop[loop]


def connection_pool(account_url: str) -> aiohttp.ClientSession:
    """This process's connection pool to the account at `account_url` (scheme and host:port)."""
    parts = urlsplit(account_url)
    key = f"{parts.scheme}://{parts.netloc}".lower()
    state = _loop_clients()
    session = state.sessions.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=_pool_size, limit_per_host=_pool_size)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                        auto_decompress=False)
        state.sessions[key] = session
    return session


def shared_transport(account_url: str) -> AioHttpTransport:
    """A transport on the account's shared pool; closing a client built on it leaves the pool open."""
    return AioHttpTransport(session=connection_pool(account_url), session_owner=False)


def cached_client(identity: str, build: Callable[[], C]) -> C:
    """The client cached under `identity` (hashed, as it may hold a secret), built once; the last 64 are kept."""
    key = hashlib.sha256(identity.encode()).hexdigest()
    clients = _loop_clients().clients
    if key in clients:
        clients.move_to_end(key)
        return clients[key]
    client = clients[key] = build()
    while len(clients) > CACHED_CLIENTS:
        clients.popitem(last=False)
    return client


def process_identity(client_id: Optional[str]) -> Any:
    """The app's managed identity credential, one per process (it caches its tokens)."""
    credentials = _loop_clients().credentials
    if client_id not in credentials:
        credentials[client_id] = app_identity(client_id)
    return credentials[client_id]


def blob_service(settings: StoreSettings) -> BlobServiceClient:
    """The process's client for the account in `settings`, by connection string or managed identity."""
    def build() -> BlobServiceClient:
        if settings.connection_string:
            probe = BlobServiceClient.from_connection_string(settings.connection_string)
            return BlobServiceClient.from_connection_string(
                settings.connection_string, transport=shared_transport(probe.url), **TRANSFER_OPTIONS)
        return BlobServiceClient(settings.service_uri, credential=process_identity(settings.client_id),
                                 transport=shared_transport(settings.service_uri), **TRANSFER_OPTIONS)
    return cached_client(f"{settings.connection_string}|{settings.service_uri}|{settings.client_id}", build)


async def close_all() -> None:
    """Close this loop's pools and credentials (for tests and tools that end their loop)."""
    state = _by_loop.pop(asyncio.get_running_loop(), None)
    if state is None:
        return
    for credential in state.credentials.values():
        await credential.close()
    for session in state.sessions.values():
        await session.close()
