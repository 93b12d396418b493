"""Resolution of identifiers into stored batches, a bounded slice per call, with a cursor across calls."""
import uuid

from shared.destination.error_log import ErrorLog, create_error_log
from shared.export.payloads import Batching, ResolveRequest, SourceInstance
from shared.export.resolution import cut_batches, resolve_batches
from shared.export.work_store import WorkStore
from shared.identifiers import parse_identifier
from shared.settings import StoreSettings, WorkSettings
from shared.source.connect import connect_store
from tests.dicom_samples import new_uid
from tests.export_client import error_lines


def _resolve_all(loop, azurite, destination, identifiers, batching, watch_store=lambda store: store):
    """Call resolve_batches until every identifier is consumed; return the calls' results and the stored batches."""
    operation_id = uuid.uuid4().hex

    async def run():
        work = await WorkStore.connect(WorkSettings("dicom-export", connection_string=azurite.connection_string))
        await work.create(operation_id)
        await work.save_identifiers(operation_id, identifiers)
        from azure.storage.blob.aio import ContainerClient
        async with ContainerClient.from_connection_string(azurite.connection_string,
                                                          destination.container_name) as target:
            await create_error_log(target, operation_id)
            store = watch_store(connect_store(StoreSettings("dicom", connection_string=azurite.connection_string)))
            calls, position, continuation, batches = [], 0, None, 0
            while position < len(identifiers) or continuation is not None:
                log = ErrorLog(target, operation_id)
                result = await resolve_batches(ResolveRequest(operation_id, position, continuation, len(identifiers),
                                                              batches, batching), store, work, log)
                await log.flush()
                calls.append(result)
                position, continuation, batches = result.position, result.continuation, batches + result.batches
            stored = [await work.load_batch(operation_id, i) for i in range(batches)]
            return calls, stored, operation_id
    return loop.run_until_complete(run())


def test_a_large_study_is_resolved_over_several_calls_with_a_cursor(loop, azurite, destination, store, monkeypatch):
    monkeypatch.setattr("shared.export.resolution.WAVES_PER_RESOLUTION", 1)
    study, series = new_uid(), new_uid()
    sops = sorted(new_uid() for _ in range(5))
    for sop in sops:
        store.upload_blob(f"{study}/{series}/{sop}.dcm", b"DICM")
    store.upload_blob(f"{study}/{series}/notes.txt", b"not an instance")
    missing = new_uid()
    calls, stored, operation_id = _resolve_all(loop, azurite, destination, [study, missing], Batching(2, 1, 1))
    assert [(c.batches, c.instances, c.position, c.skipped) for c in calls] == [
        (1, 2, 0, 0), (1, 2, 0, 0), (1, 1, 2, 1)]
    assert [c.continuation.found for c in calls[:2]] == [True, True]
    assert sorted(i.identifier.sop for b in stored for i in b.instances()) == sops
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [
        (missing, "The specified study cannot be found.")]


def test_instance_identifiers_become_named_instances_without_listing(loop, azurite, destination, store):
    study, series = new_uid(), new_uid()
    named = [f"{study}/{series}/{new_uid()}" for _ in range(3)]
    calls, stored, operation_id = _resolve_all(loop, azurite, destination, named, Batching(2, 1, 1))
    # the export's first call resolves one wave (2 × 1 instances), so that copying starts sooner; later ones four
    assert [(c.batches, c.instances, c.position, c.skipped) for c in calls] == [(1, 2, 2, 0), (1, 1, 3, 0)]
    assert [[(str(i.identifier), i.named) for i in b.instances()] for b in stored] == [
        [(named[0], True), (named[1], True)], [(named[2], True)]]
    assert error_lines(destination, operation_id) == []


def test_an_identifier_with_only_non_instance_blobs_over_several_pages_is_not_found(loop, azurite, destination,
                                                                                     store, monkeypatch):
    monkeypatch.setattr("shared.export.resolution.LISTINGS_PER_RESOLUTION", 2)
    monkeypatch.setattr("shared.export.resolution.WAVES_PER_RESOLUTION", 1)
    study, real_study, series = new_uid(), new_uid(), new_uid()
    for index in range(5):
        store.upload_blob(f"{study}/{series}/readme{index}.txt", b"not an instance")
    store.upload_blob(f"{real_study}/{series}/{new_uid()}.dcm", b"DICM")
    calls, stored, operation_id = _resolve_all(loop, azurite, destination, [real_study, study], Batching(2, 1, 1))
    assert sum(c.instances for c in calls) == 1 and sum(c.skipped for c in calls) == 1
    # two listings per call, pages of the capacity (2), both first pages read ahead at once: the real study and two
    # blobs, then 2 + 1 blobs
    assert [(c.instances, c.position, c.skipped, c.continuation is None) for c in calls] == [
        (1, 1, 0, False), (0, 2, 1, True)]
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [
        (study, "The specified study cannot be found.")]


class _ListingCounter:
    """The real blob store, counting the listing calls in flight at once and the calls that finished."""

    def __init__(self, store):
        self._store = store
        self.in_flight = self.most_in_flight = self.finished = 0

    async def list_instances(self, identifier, continuation, limit):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            page = await self._store.list_instances(identifier, continuation, limit)
            self.finished += 1
            return page
        finally:
            self.in_flight -= 1


def test_listings_run_eight_at_a_time_and_are_taken_in_order(loop, azurite, destination, store):
    studies = [new_uid() for _ in range(20)]
    missing = new_uid()
    for study in studies:
        store.upload_blob(f"{study}/{new_uid()}/{new_uid()}.dcm", b"DICM")
    identifiers = studies[:5] + [missing] + studies[5:]
    counter = _ListingCounter(None)

    def watch(real):
        counter._store = real
        return counter
    calls, stored, operation_id = _resolve_all(loop, azurite, destination, identifiers, Batching(2, 1, 1), watch)
    # capacity 2 × 1 × 1 = 2 instances in the first call, then 2 × 1 × 4 = 8 and so at most 8 identifiers per call;
    # the second call's fourth matches nothing
    assert [(c.batches, c.instances, c.position, c.skipped) for c in calls] == [
        (1, 2, 2, 0), (4, 7, 10, 1), (4, 8, 18, 0), (2, 3, 21, 0)]
    assert [str(i.identifier).split("/")[0] for b in stored for i in b.instances()] == studies
    assert counter.most_in_flight == 8
    assert counter.finished == len(identifiers)  # each identifier listed once, none read ahead in vain
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [
        (missing, "The specified study cannot be found.")]


def _batch_shapes(stored):
    """Each stored batch as the list of (sop, size) it holds."""
    return [[(i.identifier.sop, i.size) for i in batch.instances()] for batch in stored]


def test_batches_are_cut_by_listed_bytes_and_an_instance_over_the_bound_goes_alone(loop, azurite, destination, store):
    study, series = new_uid(), new_uid()
    sizes = [40, 30, 30, 1, 120, 10, 50, 50, 100]
    sops = sorted(new_uid() for _ in sizes)  # listed in name order
    for sop, size in zip(sops, sizes):
        store.upload_blob(f"{study}/{series}/{sop}.dcm", b"D" * size)
    calls, stored, _ = _resolve_all(loop, azurite, destination, [study], Batching(10, 1, 1, max_bytes=100))
    listed = list(zip(sops, sizes))
    # 40+30+30 reaches the bound exactly; 1 more would pass it; 120 alone; 10+50, then 50 would pass it; 50; 100 alone
    assert _batch_shapes(stored) == [listed[0:3], listed[3:4], listed[4:5], listed[5:7], listed[7:8], listed[8:9]]
    assert [(c.batches, c.instances) for c in calls] == [(6, 9)]


def test_the_count_bound_still_cuts_batches_of_small_instances(loop, azurite, destination, store):
    study, series = new_uid(), new_uid()
    sops = sorted(new_uid() for _ in range(5))
    for sop in sops:
        store.upload_blob(f"{study}/{series}/{sop}.dcm", b"D" * 10)
    _, stored, _ = _resolve_all(loop, azurite, destination, [study], Batching(2, 1, 1, max_bytes=1000))
    assert _batch_shapes(stored) == [[(sops[0], 10), (sops[1], 10)], [(sops[2], 10), (sops[3], 10)], [(sops[4], 10)]]


def test_an_instance_of_unknown_size_counts_as_an_even_share_of_the_bound(loop, azurite, destination, store):
    study, series = new_uid(), new_uid()
    named = [f"{study}/{series}/{new_uid()}" for _ in range(3)]
    listed_study, listed_series = new_uid(), new_uid()
    sops = sorted(new_uid() for _ in range(2))
    for sop, size in zip(sops, (60, 10)):
        store.upload_blob(f"{listed_study}/{listed_series}/{sop}.dcm", b"D" * size)
    batching = Batching(4, 1, 1, max_bytes=100)
    assert batching.unknown_size == 25
    # named (size unknown: 25 each): 25+25+25 = 75, then 60 would pass 100; 60+10 = 70
    _, stored, _ = _resolve_all(loop, azurite, destination, named + [listed_study], batching)
    assert [[(str(i.identifier), i.size) for i in batch.instances()] for batch in stored] == [
        [(named[0], None), (named[1], None), (named[2], None)],
        [(f"{listed_study}/{listed_series}/{sops[0]}", 60), (f"{listed_study}/{listed_series}/{sops[1]}", 10)]]
    # instances of unknown size alone are cut by count: 4 × (102 // 4 = 25) stays within 102
    unknown = [SourceInstance(parse_identifier(f"{study}/{series}/{new_uid()}"), named=True) for _ in range(9)]
    assert [len(batch) for batch in cut_batches(unknown, Batching(4, 1, 1, max_bytes=102))] == [4, 4, 1]


def test_batching_carries_the_byte_bound_and_reads_older_checkpoints_without_it():
    assert Batching(100, 4, 8, max_bytes=1024).to_dict() == {"batch_size": 100, "batches_in_flight": 4,
                                                             "copies_per_batch": 8, "max_bytes": 1024}
    assert Batching.from_dict({"batch_size": 100, "batches_in_flight": 4, "copies_per_batch": 8}) == Batching(
        100, 4, 8, max_bytes=2 * 1024 ** 3)


def _sized(count: int, size=None, named: bool = False):
    study, series = new_uid(), new_uid()
    return [SourceInstance(parse_identifier(f"{study}/{series}/{new_uid()}"), named, size) for _ in range(count)]


def test_a_short_last_wave_is_cut_again_into_whole_waves_of_even_batches():
    batching = Batching(250, 4, 8, max_bytes=2 * 1024 ** 3)
    # 1,300 listed instances: by count alone 6 batches (5 × 250 + 50), which would leave a last wave of 2 of 4;
    # cut again into 8 batches of at most 163
    assert [len(b) for b in cut_batches(_sized(1300, 2048), batching)] == [163] * 7 + [159]
    assert [len(b) for b in cut_batches(_sized(4000, 2048), batching)] == [250] * 16  # whole waves already
    # never into batches under 25 instances (a batch must still tell a store outage from bad instances)
    assert [len(b) for b in cut_batches(_sized(99, 2048), batching)] == [99]
    assert [len(b) for b in cut_batches(_sized(100, 2048), batching)] == [25] * 4
    assert [len(b) for b in cut_batches(_sized(275, 2048), batching)] == [69, 69, 69, 68]  # not 250 and 25
    # the bounds still hold in the second cut: 1 GiB instances go two to a batch of at most 2 GiB
    big = Batching(250, 2, 8, max_bytes=2 * 1024 ** 3)
    assert [len(b) for b in cut_batches(_sized(5, 1024 ** 3), big)] == [2, 2, 1]


def test_instances_of_unknown_size_form_batches_of_at_most_100_whatever_the_batch_size():
    batching = Batching(250, 4, 8, max_bytes=2 * 1024 ** 3)
    assert batching.unknown_size == 2 * 1024 ** 3 // 100  # 21 MiB, as with batches of 100
    assert [len(b) for b in cut_batches(_sized(800, named=True), batching)] == [100] * 8
    assert Batching(40, 4, 8, max_bytes=1000).unknown_size == 25  # a smaller batch size: an even share of it


def test_the_first_call_resolves_one_wave_of_batches_of_at_most_100(loop, azurite, destination):
    study, series = new_uid(), new_uid()
    named = [f"{study}/{series}/{new_uid()}" for _ in range(450)]
    calls, stored, _ = _resolve_all(loop, azurite, destination, named, Batching(250, 2, 1))
    # first: 2 in flight × min(250, 100) = 200 instances, so copying starts soon; then up to 2 × 250 × 4 = 2,000:
    # 250 of unknown size are cut at 100 (100, 100, 50), then again into a whole wave count (4 of at most 63)
    assert [(c.batches, c.instances, c.position) for c in calls] == [(2, 200, 200), (4, 250, 450)]
    assert [len(b) for b in stored] == [100, 100, 63, 63, 63, 61]
    assert [str(i.identifier) for b in stored for i in b.instances()] == named
