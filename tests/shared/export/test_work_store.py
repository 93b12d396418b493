"""The work store on Azurite: one container per operation, paged identifiers, step markers, revocation, discard."""
import uuid

import pytest

from shared.export.step_watch import StepWatch
from shared.export.work_store import OperationRevokedError, WorkStore, work_container_name
from shared.settings import WorkSettings
from tests.export_client import working_files


@pytest.fixture
def work(loop, azurite):
    return loop.run_until_complete(WorkStore.connect(WorkSettings("dicom-export",
                                                                  connection_string=azurite.connection_string)))


def _new_operation(loop, work) -> str:
    operation_id = uuid.uuid4().hex
    loop.run_until_complete(work.create(operation_id))
    loop.run_until_complete(work.save_sealed_destination(operation_id, "sealed"))
    return operation_id


def test_each_operation_has_a_container_of_its_own():
    assert work_container_name("dicom-export", "0" * 32) == "dicom-export-" + "0" * 32
    assert len(work_container_name("w" * 30, "f" * 32)) == 63  # the longest container name Azure allows


def test_identifiers_are_paged_by_the_thousand_and_read_across_pages(loop, work, blob_service):
    operation_id = _new_operation(loop, work)
    identifiers = [f"1.2.{i}" for i in range(2500)]
    loop.run_until_complete(work.save_identifiers(operation_id, identifiers))
    assert working_files(blob_service, operation_id) == [
        "destination", "identifiers/000000.json", "identifiers/000001.json", "identifiers/000002.json"]
    assert loop.run_until_complete(work.load_identifiers(operation_id, 998, 4)) == [
        "1.2.998", "1.2.999", "1.2.1000", "1.2.1001"]
    assert loop.run_until_complete(work.load_identifiers(operation_id, 2498, 10)) == ["1.2.2498", "1.2.2499"]


def test_discard_deletes_the_whole_container_and_later_steps_are_refused(loop, work, blob_service):
    operation_id = _new_operation(loop, work)
    loop.run_until_complete(work.save_identifiers(operation_id, ["1.2.3"]))
    loop.run_until_complete(work.discard(operation_id))
    loop.run_until_complete(work.discard(operation_id))  # a second time is fine
    assert working_files(blob_service, operation_id) is None
    assert loop.run_until_complete(work.is_revoked(operation_id))

    async def enter():
        async with StepWatch(work, operation_id):
            pass
    with pytest.raises(OperationRevokedError, match=f"Export {operation_id} has ended; its destination is revoked."):
        loop.run_until_complete(enter())
    with pytest.raises(OperationRevokedError):
        loop.run_until_complete(work.load_sealed_destination(operation_id))
