"""A DicomStore on a DICOMweb server: QIDO-RS lists a study's or series' instances, WADO-RS streams each instance."""
from __future__ import annotations

import asyncio
import re
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Sequence
from urllib.parse import quote

import aiohttp
from azure.core.exceptions import ClientAuthenticationError

from shared.identifiers import DicomIdentifier
from shared.partitions import DEFAULT_PARTITION, is_default_partition
from shared.settings import DicomWebSettings
from shared.source.http_retry import RetryPolicy, retry_after_seconds
from shared.source.multipart import FirstPartReader, MultipartError, multipart_boundary
from shared.source.protocol import InstancePage, StoreReadError, StoreRefusedError, unavailable_instance
from shared.source.qido_listing import SOP_UID, QidoAnswer, first_value, list_page
from shared.source.qido_studies import list_selected_page
from shared.study_selection import StudySelection

QIDO_PAGE_LIMIT = 200
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_REFUSED_STATUSES = {401, 403}
_LIMIT_TEXT = re.compile(r"result|limit|exceed|maximum|truncat|additional", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _uid(path: str) -> str:
    return quote(path, safe="")


def warns_of_limit(warnings: Sequence[str]) -> bool:
    """Whether Warning headers say a QIDO-RS answer was cut short: a 299 whose text (quoted, or as the rest of the
    value, as some servers write it) speaks of results or limits, like the standard's "The number of results exceeded
    the maximum supported by the server", or that has no text at all."""
    for value in warnings:
        code = re.match(r"\s*299\b[\s:]*", value)
        if code:
            texts = _QUOTED.findall(value) or [value[code.end():].strip(" -")]
            if any(not text or _LIMIT_TEXT.search(text) for text in texts):
                return True
    return False


class _WadoContent:
    """An instance being read from a WADO-RS multipart answer; `size` is its part's Content-Length, if given."""

    def __init__(self, store: "DicomWebStore", response: aiohttp.ClientResponse, reader: FirstPartReader,
                 first: List[bytes]):
        self._store, self._response, self._reader, self._first = store, response, reader, first
        length = (reader.headers or {}).get("content-length", "")
        self.size: Optional[int] = int(length) if length.isdigit() else None
        self.md5: Optional[str] = None  # WADO-RS does not say; the copy computes it

    async def chunks(self) -> AsyncIterator[bytes]:
        """The part's body, as it arrives; a broken or short answer raises StoreReadError."""
        produced = 0
        try:
            for chunk in self._first:
                produced += len(chunk)
                yield chunk
            self._first = []
            async for data in self._response.content.iter_any():
                chunk = self._reader.feed(data)
                if chunk:
                    produced += len(chunk)
                    yield chunk
            self._reader.finish()
        except (aiohttp.ClientError, asyncio.TimeoutError, MultipartError) as error:
            raise StoreReadError(f"Reading an instance from the DICOMweb server {self._store.url} failed "
                                 f"({type(error).__name__}: {error}).") from error
        finally:
            self._response.release()
        if self.size is not None and produced != self.size:
            raise StoreReadError(f"The DICOMweb server {self._store.url} sent {produced} bytes for an instance "
                                 f"whose part announced {self.size}.")


class DicomWebStore:
    """A DicomStore read over DICOMweb with one pooled aiohttp session; `connect_store` makes one per process."""

    def __init__(self, settings: DicomWebSettings, credential: Any = None, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, partition: str = DEFAULT_PARTITION):
        self.url = settings.url if is_default_partition(partition) else f"{settings.url}/partitions/{_uid(partition)}"
        self._settings, self._credential, self._retry, self._sleep = settings, credential, retry, sleep
        self._basic = {"Authorization": aiohttp.encode_basic_auth(settings.username, settings.password)} \
            if settings.auth == "basic" else {}
        connector = aiohttp.TCPConnector(limit=settings.connections, limit_per_host=settings.connections)
        # sock_connect, not connect: waiting for a pooled connection is not a connect timeout, opening a new one is
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120))

    async def close(self) -> None:
        """Close the session and its pooled connections."""
        await self._session.close()

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """Up to `limit` instances of a study (series in UID order) or a series, checked against the server's counts
        (see qido_listing: every shortfall is named); an instance if it exists."""
        if identifier.level == "instance":
            found = await self._search(
                f"/studies/{_uid(identifier.study)}/series/{_uid(identifier.series)}/instances",
                {"SOPInstanceUID": identifier.sop})
            exists = any(first_value(row, SOP_UID) == identifier.sop for row in found.rows)
            return InstancePage([identifier] if exists else [], None)
        return await list_page(self._search, identifier, continuation, limit, QIDO_PAGE_LIMIT)

    async def list_selected(self, selection: StudySelection, continuation: Optional[str],
                            limit: int) -> InstancePage:
        """Up to `limit` instances of the studies a QIDO-RS `/studies` search with the selection's filters finds
        (every study without filters), each listed and checked against its counts as `list_instances` does."""
        return await list_selected_page(self._search, selection, continuation, limit, QIDO_PAGE_LIMIT)

    async def open_instance(self, instance: DicomIdentifier) -> _WadoContent:
        """Start a WADO-RS retrieve of the instance as stored; 404/410 and other 4xx raise InstanceUnavailableError."""
        path = f"/studies/{_uid(instance.study)}/series/{_uid(instance.series)}/instances/{_uid(instance.sop)}"
        # identity: a server that compresses (Orthanc gzips when asked) spends CPU on bytes that are mostly pixels
        response = await self._get(path, None, {"Accept": WADO_ACCEPT, "Accept-Encoding": "identity"})
        try:
            if 400 <= response.status < 500:
                raise unavailable_instance(response.status, response.reason or "")
            reader = FirstPartReader(multipart_boundary(response.headers.get("Content-Type", "")))
            first: List[bytes] = []
            async for data in response.content.iter_any():
                chunk = reader.feed(data)
                if chunk:
                    first.append(chunk)
                if reader.headers is not None:
                    break
            else:
                reader.finish()
        except (aiohttp.ClientError, asyncio.TimeoutError, MultipartError) as error:
            response.release()
            raise StoreReadError(f"Reading an instance from the DICOMweb server {self.url} failed "
                                 f"({type(error).__name__}: {error}).") from error
        except BaseException:
            response.release()
            raise
        return _WadoContent(self, response, reader, first)

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """None: a DICOMweb server's answers are multipart, so every copy streams through the service."""
        return None

    async def _search(self, path: str, params: Dict[str, str], refusable: bool = False) -> QidoAnswer:
        """A QIDO-RS search; no match (200 `[]`, 204, or 404 for an unknown parent) has no rows. A 400 is a refused
        answer when `refusable` (a narrowing query the server does not support), an error otherwise."""
        async with await self._get(path, params, {"Accept": "application/dicom+json"}) as response:
            if response.status in (204, 404):
                return QidoAnswer([])
            if refusable and response.status == 400:
                return QidoAnswer([], refused=True)
            if response.status >= 400:  # said without the query, whose values may be patient data
                raise StoreReadError(f"The DICOMweb server {self.url} answered {response.status} {response.reason} "
                                     "to a QIDO-RS search.")
            rows = await response.json(content_type=None) or []
            return QidoAnswer(rows, warns_of_limit(response.headers.getall("Warning", [])))

    async def _get(self, path: str, params: Optional[Dict[str, str]], headers: Dict[str, str]) \
            -> aiohttp.ClientResponse:
        """GET, retrying 429/5xx and connection errors; 401/403 raise StoreRefusedError. The caller releases."""
        for attempt in range(1, self._retry.attempts + 1):
            retry_after = None
            try:
                response = await self._session.get(self.url + path, params=params,
                                                   headers={**headers, **await self._authorization()})
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as error:
                failure: BaseException = error
                problem = f"could not be reached ({type(error).__name__}: {error})"
            else:
                if response.status in _REFUSED_STATUSES:
                    response.release()
                    raise StoreRefusedError(f"The DICOMweb server {self.url} refused access to the DICOM store "
                                            f"({response.status} {response.reason}).")
                if response.status != 429 and response.status < 500:
                    return response
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                response.release()
                failure, problem = None, f"answered {response.status} {response.reason}"
            if attempt == self._retry.attempts:
                raise StoreReadError(f"The DICOMweb server {self.url} {problem} "
                                     f"{self._retry.attempts} times.") from failure
            await self._sleep(self._retry.delay(attempt, retry_after))
        raise AssertionError("unreachable")

    async def _authorization(self) -> Dict[str, str]:
        if self._credential is None:
            return self._basic
        try:
            token = await self._credential.get_token(self._settings.scope)
        except ClientAuthenticationError as error:
            raise StoreRefusedError(f"The service could not get a token for the DICOMweb server {self.url} "
                                    f"(scope {self._settings.scope}).") from error
        return {"Authorization": f"Bearer {token.token}"}
