"""The blob store's own List Blobs reader, on Azurite and behind a fault proxy: pages, fields, names, retries, errors."""
import base64
import hashlib
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from shared.identifiers import DicomIdentifier
from shared.settings import StoreSettings
from shared.source.blob_listing import ListedBlob, list_blob_page, parse_listing
from shared.source.connect import connect_store
from shared.source.protocol import StoreRefusedError
from tests.azurite import ACCOUNT, KEY


def _storage_error(code: str) -> dict:
    """An error answer as Azure Storage sends it: the code in a header and in an XML body."""
    return {"headers": {"x-ms-error-code": code, "Content-Type": "application/xml"},
            "body": f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>m</Message></Error>'}


def _connection_string(proxy) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={proxy.url}/{ACCOUNT};"


def _list_all(loop, connection_string: str, prefix: str, limit: int):
    async def listing():
        async with BlobServiceClient.from_connection_string(connection_string, initial_backoff=0.05,
                                                            increment_base=1) as service:
            container = service.get_container_client("dicom")
            pages, marker = [], None
            while True:
                page = await list_blob_page(container, prefix, marker, limit)
                pages.append(page.blobs)
                marker = page.next_marker
                if marker is None:
                    return pages
    return loop.run_until_complete(listing())


def test_pages_follow_the_marker_and_carry_each_blobs_name_size_and_md5(loop, azurite, store):
    prefix = f"listing-{uuid.uuid4().hex[:8]}/"
    names = [f"{prefix}a/b/{index}.dcm" for index in range(5)] + [f"{prefix}a/b/with space & ü.dcm"]
    for index, name in enumerate(names):
        store.upload_blob(name, b"x" * (index + 1))
    store.upload_blob(f"{prefix}no-md5.dcm", b"y" * 7, content_settings=ContentSettings(content_md5=None))
    pages = _list_all(loop, azurite.connection_string, prefix, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = {blob.name: blob for page in pages for blob in page}
    expected = {blob.name: blob for blob in store.list_blobs(name_starts_with=prefix)}
    assert sorted(listed) == sorted(expected) == sorted(names + [f"{prefix}no-md5.dcm"])
    for name, blob in expected.items():
        md5 = blob.content_settings.content_md5
        assert listed[name] == ListedBlob(name, blob.size, base64.b64encode(md5).decode() if md5 else None)
    assert listed[f"{prefix}a/b/4.dcm"].md5 == base64.b64encode(hashlib.md5(b"xxxxx").digest()).decode()


def test_a_name_the_service_sent_percent_encoded_is_decoded():
    body = (b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="dicom"><Blobs>'
            b'<Blob><Name Encoded="true">a%EF%BF%BEb.dcm</Name><Properties><Content-Length>12</Content-Length>'
            b'<Content-MD5 /></Properties></Blob></Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>')
    page = parse_listing(body)
    assert page.blobs == [ListedBlob("a\ufffeb.dcm", 12, None)]
    assert page.next_marker == "2!abc"


def test_a_listing_that_fails_twice_is_retried_by_the_pipeline(loop, azurite, store, proxy):
    prefix = f"retried-{uuid.uuid4().hex[:8]}/"
    store.upload_blob(f"{prefix}1.dcm", b"z")
    proxy.fail_next(2, 503, method="GET", path_part="/dicom", **_storage_error("ServerBusy"))
    pages = _list_all(loop, _connection_string(proxy), prefix, 10)
    assert [[blob.name for blob in page] for page in pages] == [[f"{prefix}1.dcm"]]
    assert len([r for r in proxy.requests if r["method"] == "GET"]) == 3


def test_an_error_answer_raises_the_sdks_error_with_status_and_code(loop, proxy):
    proxy.fail_next(1, 403, method="GET", **_storage_error("AuthorizationFailure"))
    with pytest.raises(ClientAuthenticationError) as raised:
        _list_all(loop, _connection_string(proxy), "x/", 10)
    assert (raised.value.status_code, raised.value.error_code) == (403, "AuthorizationFailure")
    proxy.fail_next(1, 400, method="GET", **_storage_error("OutOfRangeInput"))
    with pytest.raises(HttpResponseError) as raised:
        _list_all(loop, _connection_string(proxy), "x/", 10)
    assert (raised.value.status_code, raised.value.error_code) == (400, "OutOfRangeInput")


def test_the_store_turns_a_refused_listing_into_a_refusal_naming_the_setting(loop, proxy):
    async def listing():
        store = connect_store(StoreSettings("dicom", connection_string=_connection_string(proxy)))
        await store.list_instances(DicomIdentifier("1.2", None, None), None, 10)
    proxy.fail_next(1, 403, method="GET", **_storage_error("AuthorizationFailure"))
    with pytest.raises(StoreRefusedError, match="403 AuthorizationFailure.*DICOM_STORE"):
        loop.run_until_complete(listing())
