"""Copying a batch on Azurite: bounded concurrency, skips for vanished sources, a refusal stopping the batch."""
import asyncio

import pytest
from azure.storage.blob.aio import ContainerClient

from shared.batch_copy import copy_batch
from shared.destination import DestinationRefusedError
from shared.destination_allowlist import DestinationAllowlist
from shared.destination_settings import parse_destination
from shared.dicom_store import BlobDicomStore
from shared.error_log import ErrorLog, create_error_log
from shared.export_state import InstanceBatch
from shared.identifiers import DicomIdentifier
from tests.dicom_samples import new_uid
from tests.export_client import error_lines


class CountingStore:
    """The real blob store, counting how many instances are being opened at once."""

    def __init__(self, inner):
        self.inner, self.open_now, self.most_open = inner, 0, 0

    async def open_instance(self, instance):
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await asyncio.sleep(0.02)
            return await self.inner.open_instance(instance)
        finally:
            self.open_now -= 1


def _copy(loop, azurite, container_name, batch, copies):
    destination = parse_destination({"connectionstring": azurite.connection_string,
                                     "blobcontainername": container_name}, DestinationAllowlist.parse("127.0.0.1"))

    async def run():
        async with ContainerClient.from_connection_string(azurite.connection_string, "dicom") as source, \
                destination.open() as container:
            store, log = CountingStore(BlobDicomStore(source)), ErrorLog(container, "op")
            progress = await copy_batch(batch, store, destination, container, "op", log, copies)
            await create_error_log(container, "op")
            await log.flush()
            return progress, store.most_open
    return loop.run_until_complete(run())


def _stored_batch(store, count, missing=()):
    study, series = new_uid(), new_uid()
    instances = tuple(DicomIdentifier(study, series, new_uid()) for _ in range(count))
    for index, instance in enumerate(instances):
        if index not in missing:
            store.upload_blob(f"{instance.study}/{instance.series}/{instance.sop}.dcm", f"DICM{index}".encode())
    return InstanceBatch.of(instances), instances


def test_copies_with_bounded_concurrency_and_skips_vanished_sources(loop, azurite, store, destination):
    batch, instances = _stored_batch(store, 10, missing=(3, 7))
    progress, most_open = _copy(loop, azurite, destination.container_name, batch, 3)
    assert (progress.exported, progress.skipped, most_open) == (8, 2, 3)
    assert sorted(line["identifier"] for line in error_lines(destination, "op")) == sorted(
        [str(instances[3]), str(instances[7])])
    for index, instance in enumerate(instances):
        name = f"op/results/{instance.study}/{instance.series}/{instance.sop}.dcm"
        if index in (3, 7):
            assert not destination.get_blob_client(name).exists()
        else:
            assert destination.download_blob(name).readall() == f"DICM{index}".encode()


def test_a_deleted_destination_is_a_refusal(loop, azurite, store, destination):
    batch, _ = _stored_batch(store, 4)
    destination.delete_container()
    with pytest.raises(DestinationRefusedError) as refusal:
        _copy(loop, azurite, destination.container_name, batch, 2)
    assert str(refusal.value) == (f"Azure Blob Storage container '{destination.container_name}' does not exist in "
                                  "account 'devstoreaccount1'.")
