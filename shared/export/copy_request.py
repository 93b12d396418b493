"""The hot path of a copy: one pre-authorized PUT per attempt on the account's pool, no SDK pipeline.

azure-storage-blob builds, signs, logs and deserializes each request through a dozen policies: about 1.5 ms of
Python CPU per copy, which bounds a worker at a few hundred copies a second. A server-side copy is one header-only
PUT, so it is sent here directly, keeping what the SDK pipeline gave it: the write gate and the server timeout
before every attempt (`shared/destination/write_gate.py`), retries with backoff on 408, 429, 5xx and no answer
(honouring Retry-After), no redirects, and errors as the SDK's exceptions (status, storage error code, headers).
Authorization: the destination's SAS as given; for an account key, a Shared Key signature per attempt (one HMAC, as
the SDK signs); for a managed identity, its bearer token, reused until five minutes before it expires. A streamed
copy small enough for one request (up to 4 MiB) is written the same way, as one Put Blob. Everything else on the
destination still goes through azure-storage-blob.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import weakref
from email.utils import formatdate
from typing import Dict, Optional, Tuple
from urllib.parse import quote, urlsplit

import aiohttp
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob._shared.constants import X_MS_VERSION
from azure.storage.blob.aio import ContainerClient

from shared.cloud.clients import connection_pool
from shared.cloud.storage_errors import response_error
from shared.destination import write_gate
from shared.destination.blob_destination import without_query
from shared.source.http_retry import RetryPolicy, retry_after_seconds

PUT_FROM_URL, COPY_FROM_URL = "put-from-url", "copy-from-url"
_MODE_HEADERS = {PUT_FROM_URL: {"x-ms-blob-type": "BlockBlob", "x-ms-copy-source-blob-properties": "true"},
                 COPY_FROM_URL: {"x-ms-requires-sync": "true"}}
COPY_RETRY = RetryPolicy(attempts=5, first_delay=1.0, longest_delay=30.0)
RETRIED_STATUSES = {408, 429, 500, 502, 503, 504}
TOKEN_SCOPE = "https://storage.azure.com/.default"
TOKEN_RENEW_SECONDS = 300
# The server answers within its own timeout (the gate's); wait a little longer for that answer before giving up.
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=write_gate.WRITE_TIMEOUT_SECONDS + 30)
_NO_CONTENT_TYPE = ("Content-Type",)  # aiohttp would add one to a PUT; it is signed, and the SDK sends none
_by_container: "weakref.WeakKeyDictionary[ContainerClient, CopyRequests]" = weakref.WeakKeyDictionary()


class CopyRequests:
    """Server-side copies into one destination container; one per destination client, so one per process."""

    def __init__(self, container: ContainerClient, policy: RetryPolicy = COPY_RETRY):
        self._base = without_query(container.url).rstrip("/")
        self._given_sas = urlsplit(container.url).query
        self._credential = container.credential
        self._session = connection_pool(self._base)
        self._policy = policy
        self._token: Dict[str, str] = {}
        self._renew_at = 0.0 if hasattr(self._credential, "get_token") else float("inf")
        account_key = getattr(self._credential, "account_key", None)
        self._signing_key = base64.b64decode(account_key) if account_key else None
        self._resource = f"/{container.account_name}{urlsplit(self._base).path}"

    async def copy(self, blob_name: str, source_url: str, mode: str, md5: Optional[str] = None,
                   attempts: Optional[int] = None) -> None:
        """Copy `source_url` into `blob_name` with Put Blob From URL or Copy Blob From URL (`mode`), overwriting.

        `md5` (base64), when given, is checked by the destination. Raises the SDK's HttpResponseError (or a
        subclass) for an error answer, ServiceResponseError when no answer came, after `attempts` tries.
        """
        headers = {"x-ms-copy-source": source_url, "x-ms-version": X_MS_VERSION, "Content-Length": "0",
                   **_MODE_HEADERS[mode]}
        if md5:
            headers["x-ms-source-content-md5"] = md5
        await self._put(blob_name, headers, b"", attempts or self._policy.attempts)

    async def put_blob(self, blob_name: str, data: bytes, md5: str) -> None:
        """Write `data` as block blob `blob_name` in one Put Blob, overwriting, with Content-Type application/dicom
        and Content-MD5 `md5` (base64) stored as its properties, as azure-storage-blob's `upload_blob` would.

        Raises as `copy` does.
        """
        headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": X_MS_VERSION, "Content-Length": str(len(data)),
                   "x-ms-blob-content-type": "application/dicom", "x-ms-blob-content-md5": md5}
        await self._put(blob_name, headers, data, self._policy.attempts)

    async def _put(self, blob_name: str, headers: Dict[str, str], data: bytes, attempts: int) -> None:
        """One PUT of `blob_name`, tried up to `attempts` times: each attempt signed anew and passed by the gate."""
        path = quote(blob_name, safe="/~")
        for attempt in range(1, attempts + 1):
            timeout = write_gate.WRITE_TIMEOUT_SECONDS
            url = f"{self._base}/{path}?{self._given_sas}" if self._given_sas else f"{self._base}/{path}"
            attempt_headers = {**headers, "x-ms-date": formatdate(usegmt=True), **await self._authorization()}
            if self._signing_key:
                attempt_headers["Authorization"] = self._shared_key(path, attempt_headers, timeout, len(data))
            write_gate.check_write_permission()  # last, after a token fetch that may have taken a while
            failure, retry_after = await self._send(write_gate.with_server_timeout(url, timeout), attempt_headers,
                                                    data)
            if failure is None:
                return
            retried = not isinstance(failure, HttpResponseError) or failure.status_code in RETRIED_STATUSES
            if not retried or attempt == attempts:
                raise failure
            await asyncio.sleep(self._policy.delay(attempt, retry_after))

    async def _send(self, url: str, headers: Dict[str, str],
                    data: bytes) -> Tuple[Optional[Exception], Optional[float]]:
        try:
            async with self._session.put(url, headers=headers, data=data or None, allow_redirects=False,
                                         timeout=CLIENT_TIMEOUT, skip_auto_headers=_NO_CONTENT_TYPE) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None, None
                return (response_error(response.status, response.reason or "", response.headers),
                        retry_after_seconds(response.headers.get("Retry-After")))
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return ServiceResponseError(f"The destination did not answer a copy ({type(error).__name__})."), None

    async def _authorization(self) -> Dict[str, str]:
        """The managed identity's bearer token header (renewed when it nears its expiry), or none."""
        if time.time() >= self._renew_at:
            if not self._base.startswith("https://"):  # as the SDK: a bearer token never travels in clear
                raise ServiceRequestError("Bearer token authentication is not permitted for non-https URLs.")
            token = await self._credential.get_token(TOKEN_SCOPE)
            self._token = {"Authorization": f"Bearer {token.token}"}
            self._renew_at = token.expires_on - TOKEN_RENEW_SECONDS
        return self._token

    def _shared_key(self, path: str, headers: Dict[str, str], timeout: int, length: int) -> str:
        """The Shared Key signature of a PUT of `path` with `?timeout=` and `length` body bytes, no Content-MD5 or
        Content-Type header (Azure Storage's string to sign)."""
        signed = sorted(name for name in headers if name.startswith("x-ms-"))
        canonical = "".join(f"{name}:{headers[name]}\n" for name in signed)
        to_sign = (f"PUT\n\n\n{length or ''}\n\n\n\n\n\n\n\n\n"
                   f"{canonical}{self._resource}/{path}\ntimeout:{timeout}")
        digest = hmac.new(self._signing_key, to_sign.encode(), hashlib.sha256).digest()
        return f"SharedKey {self._resource.split('/')[1]}:{base64.b64encode(digest).decode()}"


def copy_requests(container: ContainerClient) -> CopyRequests:
    """The copy path for the destination behind `container` (a process's shared client), built once."""
    requests = _by_container.get(container)
    if requests is None:
        requests = _by_container[container] = CopyRequests(container)
    return requests
