"""What of the blob store's credentials reaches a destination: a read SAS for one blob, never the store's own."""
import datetime
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

from shared.destination import blob_destination, write_gate
from shared.destination.error_log import ErrorLog
from shared.destination.validation import parse_destination
from shared.export import copy_request
from shared.export.batch_copy import copy_batch
from shared.export.instance_copier import InstanceCopier
from shared.settings import ExportSettings, StoreSettings
from shared.source.connect import connect_store
from tests.azurite import ACCOUNT, KEY
from tests.shared.export.test_instance_copier import ObservedStore, _assert_copied, _stored


@pytest.fixture
def destination_requests(monkeypatch):
    """Every request sent to a destination from now on: (method, URL, headers), through the SDK or the copy path."""
    seen = []

    def recording_gate(request):
        write_gate.gate_request(request)
        http = request.http_request
        seen.append((http.method, http.url, dict(http.headers)))

    async def recording_send(requests, url, headers, data):
        seen.append(("PUT", url, dict(headers)))
        return await send(requests, url, headers, data)
    send = copy_request.CopyRequests._send
    monkeypatch.setattr(blob_destination, "gate_request", recording_gate)
    monkeypatch.setattr(copy_request.CopyRequests, "_send", recording_send)
    return seen


def _store_sas(azurite) -> str:
    """An account SAS that reads and lists everything in the store's account, as an operator might configure."""
    return generate_account_sas(ACCOUNT, KEY, ResourceTypes(service=True, container=True, object=True),
                                AccountSasPermissions(read=True, list=True),
                                expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))


def _copy_from(loop, store_connection_string, azurite, container_name, batch):
    """Copy `batch` in `auto` mode from the store at `store_connection_string`; return (progress, mode, store, id)."""
    settings = {"connectionstring": azurite.connection_string, "blobcontainername": container_name}
    destination = parse_destination(settings, ExportSettings.from_environment().allowed_destinations)
    operation_id = uuid.uuid4().hex

    async def run():
        store = ObservedStore(connect_store(StoreSettings("dicom", connection_string=store_connection_string)))
        container = destination.shared_client()
        copier = InstanceCopier(store, destination, container, operation_id, "auto")
        copied = await copy_batch(batch, copier, ErrorLog(container, operation_id), 4)
        return copied.progress, copier.mode, store, operation_id
    return loop.run_until_complete(run())


def test_a_store_reached_by_its_own_sas_is_streamed_and_the_sas_never_reaches_the_destination(
        loop, azurite, store, destination, destination_requests):
    sas = _store_sas(azurite)
    signature = parse_qs(sas)["sig"][0]
    batch, instances, data = _stored(store, 3)
    progress, mode, observed, operation_id = _copy_from(
        loop, f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={sas}", azurite,
        destination.container_name, batch)
    assert (progress.exported, progress.skipped, mode, observed.opened) == (3, 0, "stream", 3)
    _assert_copied(destination, operation_id, instances, data)
    assert len(destination_requests) >= 3
    leaks = [(method, url) for method, url, headers in destination_requests
             if signature in url or any(signature in str(value) for value in headers.values())]
    assert leaks == []
    assert [headers for _, _, headers in destination_requests if "x-ms-copy-source" in headers] == []
    url = loop.run_until_complete(observed.inner.source_url(instances[0]))
    assert url is None


def test_a_store_reached_by_its_key_hands_out_a_short_read_sas_for_one_blob(loop, azurite, store, destination,
                                                                           destination_requests):
    batch, instances, data = _stored(store, 2)
    progress, mode, observed, operation_id = _copy_from(loop, azurite.connection_string, azurite,
                                                        destination.container_name, batch)
    assert (progress.exported, progress.skipped, mode, observed.opened) == (2, 0, "copy-from-url", 0)
    _assert_copied(destination, operation_id, instances, data)
    sources = [headers["x-ms-copy-source"] for _, _, headers in destination_requests if "x-ms-copy-source" in headers]
    assert len(sources) == 3  # the first copy probed Put Blob From URL (501 on Azurite), then Copy Blob From URL
    assert {urlsplit(source).path for source in sources} == {
        f"/{ACCOUNT}/dicom/{i.study}/{i.series}/{i.sop}.dcm" for i in instances}
    now = datetime.datetime.now(datetime.timezone.utc)
    for source in sources:
        query = parse_qs(urlsplit(source).query)
        assert (query["sr"], query["sp"]) == (["b"], ["r"])  # this blob only, read only
        expiry = datetime.datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
        assert datetime.timedelta(minutes=14) < expiry - now <= datetime.timedelta(minutes=15)
