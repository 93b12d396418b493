"""The DICOMweb store against a real Orthanc: QIDO-RS listing and paging, WADO-RS streaming, refusals and retries."""
import json
import socket
from dataclasses import dataclass
from typing import Dict, List

import azure.identity.aio
import pytest
from azure.core.credentials import AccessToken

import shared.source.dicomweb_store
from shared.cloud.identity import app_identity
from shared.identifiers import DicomIdentifier
from shared.settings import DicomWebSettings, StoreSettings
from shared.source.connect import connect_store
from shared.source.dicomweb_store import DicomWebStore
from shared.source.http_retry import RetryPolicy
from shared.source.protocol import InstancePage, InstanceUnavailableError, StoreReadError, StoreRefusedError
from tests.dicom_samples import make_instance, make_large_instance, new_uid
from tests.fault_proxy import FaultProxy
from tests.orthanc import Orthanc

LARGE_EXTRA_BYTES = 6 * 1024 * 1024


@dataclass
class Seeded:
    """What the module stored in Orthanc: instances per study and Orthanc's id for each instance."""

    studies: Dict[str, List[DicomIdentifier]]
    orthanc_ids: Dict[DicomIdentifier, str]
    large: DicomIdentifier


@pytest.fixture(scope="module")
def seeded(orthanc: Orthanc) -> Seeded:
    """Study A: three series of 3, 2 and 4 instances; study B: one series of 2; study C: one instance of ~6 MiB."""
    studies: Dict[str, List[DicomIdentifier]] = {}
    ids: Dict[DicomIdentifier, str] = {}
    for shape in ((3, 2, 4), (2,)):
        study = new_uid()
        studies[study] = []
        for count in shape:
            series = new_uid()
            for _ in range(count):
                instance = DicomIdentifier(study, series, new_uid())
                ids[instance] = orthanc.upload(make_instance(*instance.parts))
                studies[study].append(instance)
    large = DicomIdentifier(new_uid(), new_uid(), new_uid())
    ids[large] = orthanc.upload(make_large_instance(*large.parts, LARGE_EXTRA_BYTES))
    studies[large.study] = [large]
    return Seeded(studies, ids, large)


class RecordedSleep:
    """Stands in for asyncio.sleep so retry tests record each wait instead of spending it."""

    def __init__(self):
        self.waits: List[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _settings(url: str, **kwargs) -> DicomWebSettings:
    return DicomWebSettings(url, **kwargs)


def _run(loop, settings: DicomWebSettings, work, sleep=None):
    async def go():
        credential = app_identity(settings.client_id) if settings.auth == "identity" else None
        store = DicomWebStore(settings, credential, RetryPolicy(), sleep or RecordedSleep())
        try:
            return await work(store)
        finally:
            await store.close()
            if credential is not None:
                await credential.close()
    return loop.run_until_complete(go())


async def _list_all(store: DicomWebStore, identifier: DicomIdentifier, limit: int) -> List[InstancePage]:
    pages, continuation = [], None
    while True:
        page = await store.list_instances(identifier, continuation, limit)
        pages.append(page)
        continuation = page.continuation
        if continuation is None:
            return pages


async def _read(store: DicomWebStore, instance: DicomIdentifier) -> tuple:
    content = await store.open_instance(instance)
    chunks = [chunk async for chunk in content.chunks()]
    return content.size, chunks


def test_a_study_lists_every_instance_of_its_series(loop, orthanc, seeded):
    study = next(iter(seeded.studies))
    page = _run(loop, _settings(orthanc.dicomweb_url),
                lambda store: store.list_instances(DicomIdentifier(study), None, 100))
    assert page.continuation is None
    assert sorted(page.instances, key=str) == sorted(seeded.studies[study], key=str)


def test_a_series_and_an_instance_list_themselves(loop, orthanc, seeded):
    instances = next(iter(seeded.studies.values()))
    series = DicomIdentifier(instances[0].study, instances[0].series)
    expected = sorted((i for i in instances if i.series == series.series), key=str)

    async def work(store):
        return (await store.list_instances(series, None, 100),
                await store.list_instances(instances[0], None, 100))
    series_page, instance_page = _run(loop, _settings(orthanc.dicomweb_url), work)
    assert (sorted(series_page.instances, key=str), series_page.continuation) == (expected, None)
    assert instance_page == InstancePage([instances[0]], None)


def test_unknown_study_series_and_instance_give_an_empty_page(loop, orthanc, seeded):
    known = next(iter(seeded.studies.values()))[0]
    unknown = [DicomIdentifier("1.2.3"), DicomIdentifier("1.2.3", "4.5"), DicomIdentifier(known.study, "4.5"),
               DicomIdentifier(known.study, known.series, "6.7"), DicomIdentifier("1.2.3", "4.5", "6.7")]

    async def work(store):
        return [await store.list_instances(identifier, None, 10) for identifier in unknown]
    assert _run(loop, _settings(orthanc.dicomweb_url), work) == [InstancePage([], None)] * len(unknown)


@pytest.mark.parametrize("limit,sizes", [(2, [2, 2, 2, 2, 1]), (3, [3, 3, 3]), (4, [4, 4, 1]), (9, [9])])
def test_pages_smaller_than_the_study_give_every_instance_exactly_once(loop, orthanc, seeded, limit, sizes):
    study = next(iter(seeded.studies))
    pages = _run(loop, _settings(orthanc.dicomweb_url), lambda store: _list_all(store, DicomIdentifier(study), limit))
    listed = [instance for page in pages for instance in page.instances]
    assert [len(page.instances) for page in pages] == sizes
    assert sorted(listed, key=str) == sorted(seeded.studies[study], key=str)
    assert all(len(json.dumps(page.continuation)) < 200 for page in pages)


def test_a_limit_above_the_server_page_takes_several_queries(loop, orthanc, seeded, monkeypatch):
    monkeypatch.setattr(shared.source.dicomweb_store, "QIDO_PAGE_LIMIT", 2)
    study = next(iter(seeded.studies))
    page = _run(loop, _settings(orthanc.dicomweb_url), lambda store: store.list_instances(DicomIdentifier(study), None, 100))
    assert (sorted(page.instances, key=str), page.continuation) == (sorted(seeded.studies[study], key=str), None)


def test_retrieved_bytes_are_the_stored_files(loop, orthanc, seeded):
    instances = [i for listed in seeded.studies.values() for i in listed]

    async def work(store):
        return [await _read(store, instance) for instance in instances]
    for instance, (size, chunks) in zip(instances, _run(loop, _settings(orthanc.dicomweb_url), work)):
        stored = orthanc.stored_file(seeded.orthanc_ids[instance])
        assert (size, b"".join(chunks)) == (len(stored), stored)


def test_a_large_instance_streams_in_many_chunks(loop, orthanc, seeded):
    size, chunks = _run(loop, _settings(orthanc.dicomweb_url), lambda store: _read(store, seeded.large))
    stored = orthanc.stored_file(seeded.orthanc_ids[seeded.large])
    assert len(stored) > LARGE_EXTRA_BYTES
    assert (size, b"".join(chunks)) == (len(stored), stored)
    assert len(chunks) > 10


def test_a_deleted_instance_is_unavailable(loop, orthanc):
    instance = DicomIdentifier(new_uid(), new_uid(), new_uid())
    orthanc.delete(orthanc.upload(make_instance(*instance.parts)))
    with pytest.raises(InstanceUnavailableError) as error:
        _run(loop, _settings(orthanc.dicomweb_url), lambda store: store.open_instance(instance))
    assert str(error.value) == ("The instance could not be read from the DICOM store: it was deleted or changed "
                                "after the export started.")


@pytest.fixture(scope="module")
def guarded_orthanc(orthanc):
    """A second Orthanc that requires basic authentication (user `exporter`)."""
    server = Orthanc(users={"exporter": "s3cret"}).start()
    yield server
    server.close()


def test_basic_credentials_are_sent(loop, guarded_orthanc):
    instance = DicomIdentifier(new_uid(), new_uid(), new_uid())
    oid = guarded_orthanc.upload(make_instance(*instance.parts))
    settings = _settings(guarded_orthanc.dicomweb_url, auth="basic", username="exporter", password="s3cret")

    async def work(store):
        return await store.list_instances(instance, None, 10), await _read(store, instance)
    page, (size, chunks) = _run(loop, settings, work)
    assert page == InstancePage([instance], None)
    assert b"".join(chunks) == guarded_orthanc.stored_file(oid)


@pytest.mark.parametrize("password", ["wrong", None])
def test_refused_credentials_fail_with_the_server_and_status(loop, guarded_orthanc, password):
    settings = (_settings(guarded_orthanc.dicomweb_url, auth="basic", username="exporter", password=password)
                if password else _settings(guarded_orthanc.dicomweb_url))
    instance = DicomIdentifier("1.2.3", "4.5", "6.7")
    for work in (lambda store: store.list_instances(instance, None, 10), lambda store: store.open_instance(instance)):
        with pytest.raises(StoreRefusedError) as error:
            _run(loop, settings, work)
        assert str(error.value) == (f"The DICOMweb server {guarded_orthanc.dicomweb_url} refused access to the "
                                    f"DICOM store (401 Unauthorized).")


@pytest.fixture
def proxy(loop, orthanc):
    """A fault-injecting proxy in front of the session's Orthanc."""
    server = loop.run_until_complete(FaultProxy(orthanc.url).start())
    yield server
    loop.run_until_complete(server.stop())


@pytest.mark.parametrize("status,headers,waits", [
    (503, {}, [0.5, 1.0, 2.0]),
    (429, {"Retry-After": "3"}, [3.0, 3.0, 3.0]),
    (503, {"Retry-After": "999"}, [20.0, 20.0, 20.0]),
])
def test_throttling_and_server_errors_are_retried(loop, proxy, seeded, status, headers, waits):
    instance = seeded.studies[next(iter(seeded.studies))][0]
    sleep = RecordedSleep()
    proxy.fail_next(3, status, headers)
    size, chunks = _run(loop, _settings(proxy.url + "/dicom-web"), lambda store: _read(store, instance), sleep)
    assert [r["path"].split("?")[0] for r in proxy.requests] == [
        f"/dicom-web/studies/{instance.study}/series/{instance.series}/instances/{instance.sop}"] * 4
    assert sleep.waits == waits
    assert b"".join(chunks) == make_instance(*instance.parts)


def test_a_listing_is_retried_too(loop, proxy, seeded):
    study = next(iter(seeded.studies))
    proxy.fail_next(2, 503)
    page = _run(loop, _settings(proxy.url + "/dicom-web"),
                lambda store: store.list_instances(DicomIdentifier(study), None, 100))
    assert sorted(page.instances, key=str) == sorted(seeded.studies[study], key=str)
    assert [r["path"] for r in proxy.requests[:3]] == [
        f"/dicom-web/studies?StudyInstanceUID={study}&includefield=00201208,00201206"] * 3


def test_retries_give_up_after_four_attempts(loop, proxy, seeded):
    instance = seeded.studies[next(iter(seeded.studies))][0]
    proxy.fail_next(5, 503)
    with pytest.raises(StoreReadError) as error:
        _run(loop, _settings(proxy.url + "/dicom-web"), lambda store: store.open_instance(instance))
    assert str(error.value) == f"The DICOMweb server {proxy.url}/dicom-web answered 503 Service Unavailable 4 times."
    assert len(proxy.requests) == 4


def test_an_unreachable_server_is_retried_then_reported(loop):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = RecordedSleep()
    with pytest.raises(StoreReadError) as error:
        _run(loop, _settings(f"http://127.0.0.1:{port}/dicom-web"),
             lambda store: store.list_instances(DicomIdentifier("1.2"), None, 1), sleep)
    assert str(error.value).startswith(f"The DICOMweb server http://127.0.0.1:{port}/dicom-web could not be reached "
                                       f"(ClientConnectorError: ")
    assert str(error.value).endswith(" 4 times.")
    assert sleep.waits == [0.5, 1.0, 2.0]


class StandInIdentity:
    """Issues tokens named after their scope; records the client id it was made for."""

    made_for: List[str] = []

    def __init__(self, client_id=None, **kwargs):
        StandInIdentity.made_for.append(client_id)

    async def get_token(self, *scopes, **kwargs):
        return AccessToken(f"token-for-{' '.join(scopes)}", 4102444800)

    async def close(self):
        pass


def test_identity_auth_sends_a_bearer_token_for_the_scope(loop, proxy, seeded, monkeypatch):
    StandInIdentity.made_for = []
    monkeypatch.setattr(azure.identity.aio, "ManagedIdentityCredential", StandInIdentity)
    instance = seeded.studies[next(iter(seeded.studies))][0]
    settings = _settings(proxy.url + "/dicom-web", auth="identity", scope="api://dicom/.default", client_id="cid")
    page = _run(loop, settings, lambda store: store.list_instances(instance, None, 1))
    assert page == InstancePage([instance], None)
    assert StandInIdentity.made_for == ["cid"]
    assert [r["authorization"] for r in proxy.requests] == ["Bearer token-for-api://dicom/.default"]


def test_connect_store_picks_the_dicomweb_store_from_the_settings_once_per_process(loop, orthanc, seeded):
    settings = StoreSettings.from_environment({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": orthanc.dicomweb_url})

    async def work():
        store = connect_store(settings)
        return (type(store), store is connect_store(settings), await store.list_instances(seeded.large, None, 5),
                await store.source_url(seeded.large))
    assert loop.run_until_complete(work()) == (DicomWebStore, True, InstancePage([seeded.large], None), None)
