"""The lean server-side copy path on Azurite behind a fault proxy: the write gate, server timeout, retries, errors."""
import base64
import hashlib
import time
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shared.allowlist import DestinationAllowlist
from shared.destination import write_gate
from shared.destination.validation import parse_destination
from shared.destination.write_gate import writes_permitted_by
from shared.export.copy_request import COPY_FROM_URL, CopyRequests, copy_requests
from shared.export.work_store import OperationRevokedError
from shared.identifiers import DicomIdentifier
from shared.settings import StoreSettings
from shared.source.connect import connect_store
from shared.source.http_retry import RetryPolicy
from tests.azurite import ACCOUNT, KEY

QUICK = RetryPolicy(attempts=4, first_delay=0.01, longest_delay=5.0)


def _container(proxy):
    """The process's client for the `dicom` container reached through the proxy, as a destination."""
    settings = {"connectionstring": f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                                    f"BlobEndpoint={proxy.url}/{ACCOUNT};", "blobcontainername": "dicom"}
    return parse_destination(settings, DestinationAllowlist.parse("127.0.0.1")).shared_client()


def _source_url(loop, azurite, store, data: bytes) -> str:
    """A stored instance's read SAS URL on Azurite itself (the copy's source), as the blob store hands it out."""
    instance = DicomIdentifier(uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex)
    store.upload_blob(f"{instance.study}/{instance.series}/{instance.sop}.dcm", data)

    async def signed() -> str:
        blob_store = connect_store(StoreSettings("dicom", connection_string=azurite.connection_string))
        return await blob_store.source_url(instance)
    return loop.run_until_complete(signed())


def _copy(loop, proxy, name: str, source: str):
    """Copy `source` to `name` in one try-loop of a copy path with quick backoff, on the test loop."""
    async def copy():
        await CopyRequests(_container(proxy), QUICK).copy(name, source, COPY_FROM_URL)
    loop.run_until_complete(copy())


def _puts(proxy, prefix: str):
    where = f"/{ACCOUNT}/dicom/{prefix}"
    return [r["path"] for r in proxy.requests if r["method"] == "PUT" and r["path"].startswith(where)]


def test_every_copy_request_passes_the_gate_and_carries_the_server_timeout(loop, azurite, proxy, store):
    source = _source_url(loop, azurite, store, b"first")
    prefix = f"gate-{uuid.uuid4().hex[:8]}/"
    refusals = []

    def refuse():
        refusals.append("checked")
        raise OperationRevokedError("revoked")

    async def scenario():
        requests = copy_requests(_container(proxy))
        await requests.copy(f"{prefix}first.dcm", source, COPY_FROM_URL)
        with writes_permitted_by(refuse):
            with pytest.raises(OperationRevokedError):
                await requests.copy(f"{prefix}second.dcm", source, COPY_FROM_URL)
    loop.run_until_complete(scenario())
    assert refusals == ["checked"]
    assert _puts(proxy, prefix) == [f"/{ACCOUNT}/dicom/{prefix}first.dcm?timeout={write_gate.WRITE_TIMEOUT_SECONDS}"]
    assert [b.name for b in store.list_blobs(name_starts_with=prefix)] == [f"{prefix}first.dcm"]


def test_a_throttled_copy_waits_as_retry_after_says_and_every_attempt_passes_the_gate(loop, azurite, proxy, store):
    source = _source_url(loop, azurite, store, b"throttled at first")
    prefix = f"retry-{uuid.uuid4().hex[:8]}/"
    proxy.fail_next(2, 503, {"Retry-After": "1", "x-ms-error-code": "ServerBusy"}, method="PUT", path_part=prefix,
                    header="x-ms-copy-source")
    checks = []

    started = time.monotonic()
    with writes_permitted_by(lambda: checks.append("checked")):
        _copy(loop, proxy, f"{prefix}copy.dcm", source)
    elapsed = time.monotonic() - started
    assert checks == ["checked"] * 3
    assert _puts(proxy, prefix) == [f"/{ACCOUNT}/dicom/{prefix}copy.dcm?timeout=60"] * 3
    assert 2.0 <= elapsed < 4.0  # two waits of Retry-After's 1 s, not the policy's 10 ms
    assert store.download_blob(f"{prefix}copy.dcm").readall() == b"throttled at first"


def test_a_fault_that_outlasts_the_attempts_is_raised_as_the_sdk_error_with_its_code(loop, azurite, proxy, store):
    source = _source_url(loop, azurite, store, b"never copied")
    prefix = f"faults-{uuid.uuid4().hex[:8]}/"
    proxy.fail_next(4, 500, {"x-ms-error-code": "OperationTimedOut"}, method="PUT", path_part=prefix)
    with pytest.raises(HttpResponseError) as raised:
        _copy(loop, proxy, f"{prefix}copy.dcm", source)
    assert (raised.value.status_code, raised.value.error_code) == (500, "OperationTimedOut")
    assert len(_puts(proxy, prefix)) == 4
    assert not store.get_blob_client(f"{prefix}copy.dcm").exists()


def test_a_refusal_or_a_redirect_is_not_retried_nor_followed(loop, azurite, proxy, store):
    source = _source_url(loop, azurite, store, b"refused")
    prefix = f"refused-{uuid.uuid4().hex[:8]}/"
    proxy.fail_next(1, 403, {"x-ms-error-code": "AuthorizationPermissionMismatch"}, method="PUT", path_part=prefix)
    proxy.fail_next(1, 307, {"Location": f"{proxy.url}/{ACCOUNT}/dicom/{prefix}elsewhere.dcm"}, method="PUT",
                    path_part=prefix)
    with pytest.raises(ClientAuthenticationError) as refused:
        _copy(loop, proxy, f"{prefix}copy.dcm", source)
    with pytest.raises(HttpResponseError) as redirected:
        _copy(loop, proxy, f"{prefix}copy.dcm", source)
    assert (refused.value.status_code, refused.value.error_code) == (403, "AuthorizationPermissionMismatch")
    assert redirected.value.status_code == 307
    assert len(_puts(proxy, prefix)) == 2
    assert [b.name for b in store.list_blobs(name_starts_with=prefix)] == []


def test_a_small_streamed_file_is_one_put_blob_with_its_type_and_md5_retried_through_503s(loop, proxy, store):
    prefix = f"put-{uuid.uuid4().hex[:8]}/"
    data = b"\0" * 128 + b"DICM" + bytes(range(256)) * 40
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    proxy.fail_next(2, 503, method="PUT", path_part=prefix)

    async def put():
        await CopyRequests(_container(proxy), QUICK).put_blob(f"{prefix}a.dcm", data, md5)
    loop.run_until_complete(put())
    assert _puts(proxy, prefix) == [f"/{ACCOUNT}/dicom/{prefix}a.dcm?timeout={write_gate.WRITE_TIMEOUT_SECONDS}"] * 3
    blob = store.get_blob_client(f"{prefix}a.dcm")
    properties = blob.get_blob_properties()
    assert blob.download_blob().readall() == data
    assert (properties.blob_type, properties.content_settings.content_type,
            base64.b64encode(properties.content_settings.content_md5).decode()) == ("BlockBlob", "application/dicom", md5)


def test_a_put_blob_the_gate_refuses_is_never_sent(loop, proxy, store):
    prefix = f"put-refused-{uuid.uuid4().hex[:8]}/"

    def refuse():
        raise OperationRevokedError("revoked")

    async def scenario():
        with writes_permitted_by(refuse):
            with pytest.raises(OperationRevokedError):
                await copy_requests(_container(proxy)).put_blob(f"{prefix}a.dcm", b"data", "bWQ1")
    loop.run_until_complete(scenario())
    assert _puts(proxy, prefix) == []
