"""One page of List Blobs sent through the container client's own pipeline and read with ElementTree.

azure-storage-blob's deserializer builds a model per blob with dozens of properties: about 0.6 ms of Python CPU per
listed blob, more than the server-side copy that follows. The request still goes through the client's pipeline
(its authorization, retries with backoff, timeouts and no redirects); only the answer's three fields the export
uses (name, size, Content-MD5) and the continuation marker are read, straight from the XML.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import quote, unquote
from xml.etree import ElementTree

from azure.core.rest import HttpRequest
from azure.storage.blob._shared.constants import X_MS_VERSION
from azure.storage.blob.aio import ContainerClient

from shared.cloud.storage_errors import response_error


@dataclass(frozen=True)
class ListedBlob:
    """A blob as a listing names it: its name, size in bytes, and base64 Content-MD5 if it has one."""

    name: str
    size: Optional[int]
    md5: Optional[str]


@dataclass(frozen=True)
class ListedPage:
    """The blobs of one page, and the marker of the next page (None on the last)."""

    blobs: List[ListedBlob]
    next_marker: Optional[str]


async def list_blob_page(container: ContainerClient, prefix: Optional[str], marker: Optional[str],
                         limit: int) -> ListedPage:
    """List up to `limit` blobs whose names start with `prefix`, from `marker` on.

    An error answer that outlasted the pipeline's retries raises the SDK's HttpResponseError (or its subclass for
    401/403/404) with `status_code` and `error_code`.
    """
    query = f"restype=container&comp=list&maxresults={limit}"
    for name, value in (("prefix", prefix), ("marker", marker)):
        if value:
            query += f"&{name}={quote(value, safe='')}"  # %20, never '+': the signature is over decoded values
    base, _, sas = container.url.partition("?")
    request = HttpRequest("GET", f"{base}?{query}&{sas}" if sas else f"{base}?{query}",
                          headers={"x-ms-version": X_MS_VERSION, "Accept": "application/xml"})
    # The generated client's documented raw-request entry point: the same pipeline as every SDK call on `container`.
    response = await container._client._send_request(request)  # pylint: disable=protected-access
    if response.status_code != 200:
        raise response_error(response.status_code, response.reason or "", response.headers)
    return parse_listing(response.content)


def parse_listing(body: bytes) -> ListedPage:
    """The blobs and next marker of a List Blobs answer (names the service sent percent-encoded are decoded)."""
    root = ElementTree.fromstring(body)
    blobs = []
    for blob in root.iterfind("Blobs/Blob"):
        name_element = blob.find("Name")
        name = name_element.text or ""
        if name_element.get("Encoded") == "true":
            name = unquote(name)
        size = blob.findtext("Properties/Content-Length")
        blobs.append(ListedBlob(name, int(size) if size else None, blob.findtext("Properties/Content-MD5") or None))
    return ListedPage(blobs, root.findtext("NextMarker") or None)
