"""The store container a load writes to: reached after a short connect timeout, or one line saying why not."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.allowlist import is_loopback_host
from shared.cloud.identity import app_identity
from shared.cloud.storage_errors import status_text
from shared.settings import StoreSettings

CONNECT_TIMEOUT_SECONDS = 3
_CLIENT_OPTIONS = {"connection_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": 60, "retry_total": 2}


class StoreUnreachableError(Exception):
    """The store cannot be reached or refuses the load; the message is one line for the user."""


def _unreachable(url: str, reason: str) -> StoreUnreachableError:
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if is_loopback_host(host):
        return StoreUnreachableError(f"cannot reach {where}: is Azurite running? (bash scripts/run-local starts it)")
    return StoreUnreachableError(f"cannot reach {where} ({reason}): check the store's settings and your network")


@contextmanager
def store_errors(container: ContainerClient) -> Iterator[None]:
    """Turn the storage SDK's failures on `container` into a one-line StoreUnreachableError."""
    try:
        yield
    except ServiceRequestError as error:
        raise _unreachable(container.url, type(error).__name__) from None
    except ClientAuthenticationError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreUnreachableError(f"cannot authenticate to the store's account: {first_line}") from None
    except HttpResponseError as error:
        raise StoreUnreachableError(f"the store's account refused the load ({status_text(error)}): check the "
                                    "store's settings and its permissions") from None


def open_store(settings: StoreSettings) -> ContainerClient:
    """A client on the store's container, created if missing, once a TCP connection to its endpoint succeeds."""
    if settings.connection_string:
        service = BlobServiceClient.from_connection_string(settings.connection_string, **_CLIENT_OPTIONS)
    else:
        service = BlobServiceClient(settings.service_uri, credential=app_identity(settings.client_id, False),
                                    **_CLIENT_OPTIONS)
    parts = urlsplit(service.url)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                 timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise _unreachable(service.url, error.strerror or type(error).__name__) from None
    container = service.get_container_client(settings.container)
    with store_errors(container):
        try:
            container.create_container()
        except ResourceExistsError:
            pass
    return container


def store_location(container: ContainerClient) -> str:
    """`container '<name>' at <account URL>`, for telling the user where files go (no credentials)."""
    parts = urlsplit(container.url)
    account = parts.path.rstrip("/").rsplit("/", 1)[0]
    return f"container '{container.container_name}' at {parts.scheme}://{parts.netloc}{account}"
