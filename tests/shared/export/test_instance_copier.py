"""Copying batches on Azurite in every copy mode: probing, server-side copies, streaming in blocks, skips, refusals."""
import asyncio
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from shared.cloud.clients import STREAM_BLOCK_BYTES, _loop_clients, connection_pool, set_pool_size
from shared.destination.blob_destination import DestinationRefusedError
from shared.destination.error_log import ErrorLog, create_error_log
from shared.destination.validation import parse_destination
from shared.export.batch_copy import copy_batch
from shared.export.instance_copier import InstanceCopier
from shared.export.payloads import InstanceBatch, SourceInstance
from shared.identifiers import DicomIdentifier
from shared.settings import ExportSettings, StoreSettings
from shared.source.connect import connect_store
from tests.azurite import ACCOUNT, KEY, Azurite
from tests.dicom_samples import make_instance, make_large_instance, new_uid
from tests.export_client import error_lines
from tests.fault_proxy import FaultProxy


@pytest.fixture(scope="module")
def other_azurite():
    """A second emulator: a destination that cannot read the store's URLs, like a private store in Azure."""
    emulator = Azurite().start()
    yield emulator
    emulator.close()


class ObservedStore:
    """The real blob store, recording how it is used and how many copies run at once."""

    def __init__(self, inner):
        self.inner, self.now, self.most, self.opened, self.urls = inner, 0, 0, 0, 0

    async def source_url(self, instance):
        self.urls += 1
        return await self._at_once(lambda: self.inner.source_url(instance))

    async def open_instance(self, instance):
        self.opened += 1
        return await self._at_once(lambda: self.inner.open_instance(instance))

    async def _at_once(self, call):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
            return await call()
        finally:
            self.now -= 1


def _copy(loop, azurite, destination_azurite, container_name, batch, mode, copies=4):
    """Copy `batch` into `container_name` on `destination_azurite`; return (progress, settled mode, store, op id)."""
    destination = parse_destination({"connectionstring": destination_azurite.connection_string,
                                     "blobcontainername": container_name},
                                    ExportSettings.from_environment().allowed_destinations)
    operation_id = uuid.uuid4().hex

    async def run():
        store = ObservedStore(connect_store(StoreSettings("dicom", connection_string=azurite.connection_string)))
        container = destination.shared_client()
        log = ErrorLog(container, operation_id)
        copier = InstanceCopier(store, destination, container, operation_id, mode)
        progress = (await copy_batch(batch, copier, log, copies)).progress
        await create_error_log(container, operation_id)
        await log.flush()
        return progress, copier.mode, store, operation_id
    return loop.run_until_complete(run())


def _stored(store, count, missing=(), named=False, large=()):
    study, series = new_uid(), new_uid()
    instances = [DicomIdentifier(study, series, new_uid()) for _ in range(count)]
    data = {}
    for index, instance in enumerate(instances):
        if index in missing:
            continue
        data[instance] = (make_large_instance(instance.study, instance.series, instance.sop, extra_bytes=9 * 1024 * 1024) if index in large
                          else make_instance(instance.study, instance.series, instance.sop))
        store.upload_blob(f"{instance.study}/{instance.series}/{instance.sop}.dcm", data[instance], overwrite=True)
    return InstanceBatch.of([SourceInstance(i, named) for i in instances]), instances, data


def _assert_copied(container, operation_id, instances, data):
    for instance in instances:
        name = f"{operation_id}/results/{instance.study}/{instance.series}/{instance.sop}.dcm"
        if instance in data:
            assert container.download_blob(name).readall() == data[instance]
        else:
            assert not container.get_blob_client(name).exists()


def test_auto_settles_on_copy_from_url_on_the_emulator_with_bounded_concurrency(loop, azurite, store, destination):
    batch, instances, data = _stored(store, 12, missing=(5,))
    progress, mode, observed, operation_id = _copy(loop, azurite, azurite, destination.container_name, batch, "auto", 3)
    assert (progress.exported, progress.skipped, mode) == (11, 1, "copy-from-url")
    assert observed.most <= 3 and observed.opened == 1  # only the vanished instance was opened, to learn it is gone
    _assert_copied(destination, operation_id, instances, data)
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [
        (str(instances[5]), "The instance could not be read from the DICOM store: it was deleted or changed after "
                            "the export started.")]


def test_put_from_url_unsupported_by_the_emulator_falls_back_to_streaming(loop, azurite, store, destination):
    batch, instances, data = _stored(store, 3)
    progress, mode, observed, operation_id = _copy(loop, azurite, azurite, destination.container_name, batch,
                                                   "put-from-url")
    assert (progress.exported, progress.skipped, mode, observed.opened) == (3, 0, "put-from-url", 3)
    _assert_copied(destination, operation_id, instances, data)


def test_forced_stream_never_asks_for_a_source_url_and_writes_large_files_in_blocks(loop, azurite, store,
                                                                                     destination):
    batch, instances, data = _stored(store, 3, large=(1,))
    progress, mode, observed, operation_id = _copy(loop, azurite, azurite, destination.container_name, batch, "stream")
    assert (progress.exported, mode, observed.urls, observed.opened) == (3, "stream", 0, 3)
    _assert_copied(destination, operation_id, instances, data)
    large = instances[1]
    blocks = destination.get_blob_client(
        f"{operation_id}/results/{large.study}/{large.series}/{large.sop}.dcm").get_block_list()[0]
    assert [block.size for block in blocks] == [STREAM_BLOCK_BYTES, STREAM_BLOCK_BYTES,
                                                len(data[large]) - 2 * STREAM_BLOCK_BYTES]


def test_a_destination_that_cannot_read_the_store_settles_on_streaming(loop, azurite, store, other_azurite):
    target = BlobServiceClient.from_connection_string(other_azurite.connection_string) \
        .get_container_client(f"elsewhere-{uuid.uuid4().hex[:8]}")
    target.create_container()
    batch, instances, data = _stored(store, 5)
    progress, mode, observed, operation_id = _copy(loop, azurite, other_azurite, target.container_name, batch, "auto")
    assert (progress.exported, progress.skipped, mode) == (5, 0, "stream")
    _assert_copied(target, operation_id, instances, data)


def test_a_named_instance_the_store_lacks_is_not_found(loop, azurite, store, destination):
    batch, instances, data = _stored(store, 3, missing=(0, 2), named=True)
    progress, mode, _, operation_id = _copy(loop, azurite, azurite, destination.container_name, batch, "copy-from-url")
    assert (progress.exported, progress.skipped) == (1, 2)
    assert sorted((line["identifier"], line["error"]) for line in error_lines(destination, operation_id)) == sorted(
        [(str(instances[0]), "The specified instance cannot be found."),
         (str(instances[2]), "The specified instance cannot be found.")])


@pytest.mark.parametrize("mode", ["copy-from-url", "stream"])
def test_a_deleted_destination_is_a_refusal_in_every_mode(loop, azurite, store, destination, mode):
    batch, _, _ = _stored(store, 4)
    destination.delete_container()
    with pytest.raises(DestinationRefusedError) as refusal:
        _copy(loop, azurite, azurite, destination.container_name, batch, mode, 2)
    assert str(refusal.value) == (f"Azure Blob Storage container '{destination.container_name}' does not exist in "
                                  "account 'devstoreaccount1'.")


def test_clients_and_pools_are_shared_across_activities(loop, azurite, store, destination):
    for _ in range(2):
        batch, instances, data = _stored(store, 2)
        _copy(loop, azurite, azurite, destination.container_name, batch, "copy-from-url")

    async def inspect():
        sessions = _loop_clients().sessions
        pool = connection_pool(azurite.blob_endpoint)
        settings = StoreSettings("dicom", connection_string=azurite.connection_string)
        set_pool_size(16 * 64)
        larger = connection_pool("http://127.0.0.2:9/never-contacted")
        return ([key for key in sessions if str(azurite.port) in key], pool.connector.limit,
                connect_store(settings) is connect_store(settings), larger.connector.limit)
    keys, limit, same_store, larger = loop.run_until_complete(inspect())
    assert keys == [f"http://127.0.0.1:{azurite.port}"] and same_store
    assert limit >= ExportSettings.from_environment().copies_in_flight and larger == 16 * 64 + 16


class _Through:
    """A destination account reached through a proxy in front of the emulator."""

    def __init__(self, proxy_url: str):
        self.connection_string = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                                  f"BlobEndpoint={proxy_url}/{ACCOUNT};")


@pytest.mark.parametrize("faults,settled,streamed,dropped", [(1, "copy-from-url", 1, False), (3, "stream", 4, False),
                                                             (2, "copy-from-url", 1, True)])
def test_a_fault_while_probing_strikes_a_mode_and_three_rule_it_out(loop, azurite, store, destination, faults,
                                                                     settled, streamed, dropped):
    proxy = loop.run_until_complete(FaultProxy(f"http://127.0.0.1:{azurite.port}").start())
    try:
        batch, instances, data = _stored(store, 4)
        if dropped:  # a connection that ends with no answer is a fault too, not a failed batch
            proxy.drop_next(faults, method="PUT", header="x-ms-requires-sync")
        else:
            proxy.fail_next(faults, 500, method="PUT", header="x-ms-requires-sync")  # Copy Blob From URL only
        progress, mode, observed, operation_id = _copy(loop, azurite, _Through(proxy.url), destination.container_name,
                                                       batch, "auto", 1)
    finally:
        loop.run_until_complete(proxy.stop())
    assert (progress.exported, progress.skipped, mode, observed.opened) == (4, 0, settled, streamed)
    _assert_copied(destination, operation_id, instances, data)
