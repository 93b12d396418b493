"""Resolution of identifiers into waves of batches, with a cursor across waves."""
from azure.storage.blob.aio import ContainerClient

from shared.dicom_store import BlobDicomStore
from shared.error_log import ErrorLog, create_error_log
from shared.export_state import Batching, ResolveRequest
from shared.resolution import resolve_wave
from tests.dicom_samples import new_uid


def _resolve(loop, azurite, destination, identifiers, continuation, batching):
    async def run():
        async with ContainerClient.from_connection_string(azurite.connection_string, "dicom") as store_container, \
                ContainerClient.from_connection_string(azurite.connection_string,
                                                       destination.container_name) as container:
            await create_error_log(container, "op")
            log = ErrorLog(container, "op")
            wave = await resolve_wave(ResolveRequest("op", "", tuple(identifiers), continuation, batching),
                                      BlobDicomStore(store_container), log)
            await log.flush()
            return wave
    return loop.run_until_complete(run())


def test_a_large_study_is_resolved_over_several_waves(loop, azurite, destination, store):
    study, series = new_uid(), new_uid()
    sops = sorted(new_uid() for _ in range(5))
    for sop in sops:
        store.upload_blob(f"{study}/{series}/{sop}.dcm", b"DICM")
    store.upload_blob(f"{study}/{series}/notes.txt", b"not an instance")
    missing = new_uid()
    batching = Batching(batch_size=2, batches_in_flight=1, copies_per_batch=1)
    found, continuation, waves = [], None, 0
    identifiers = [study, missing]
    while identifiers:
        wave = _resolve(loop, azurite, destination, identifiers, continuation, batching)
        waves += 1
        assert len(wave.batches) <= 1 and all(len(b) <= 2 for b in wave.batches)
        found += [i.sop for b in wave.batches for i in b.instances()]
        identifiers, continuation = identifiers[wave.consumed:], wave.continuation
    assert sorted(found) == sops
    assert waves == 3
    log = destination.download_blob("op/errors.log").readall().decode()
    assert f'"identifier": "{missing}"' in log and "The specified study cannot be found." in log


def test_an_instance_identifier_matches_only_its_exact_blob(loop, azurite, destination, store):
    study, series, sop = new_uid(), new_uid(), new_uid()
    store.upload_blob(f"{study}/{series}/{sop}1.dcm", b"DICM")
    wave = _resolve(loop, azurite, destination, [f"{study}/{series}/{sop}"], None, Batching(10, 1, 1))
    assert (wave.batches, wave.consumed, wave.skipped) == ((), 1, 1)


def test_an_identifier_with_only_non_instance_blobs_over_several_pages_is_not_found(loop, azurite, destination, store):
    study, real_study, series = new_uid(), new_uid(), new_uid()
    for index in range(5):
        store.upload_blob(f"{study}/{series}/readme{index}.txt", b"not an instance")
    store.upload_blob(f"{real_study}/{series}/{new_uid()}.dcm", b"DICM")
    batching = Batching(batch_size=2, batches_in_flight=1, copies_per_batch=1)
    identifiers, continuation, skipped, exported = [real_study, study], None, 0, 0
    while identifiers:
        wave = _resolve(loop, azurite, destination, identifiers, continuation, batching)
        skipped += wave.skipped
        exported += sum(len(b) for b in wave.batches)
        identifiers, continuation = identifiers[wave.consumed:], wave.continuation
    assert (exported, skipped) == (1, 1)
