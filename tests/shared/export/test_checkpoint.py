"""The payloads exchanged between functions: round trips, batching, checkpoint advance and percentComplete."""
import json

from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import (
    Batching,
    BatchOutcome,
    CopyRequest,
    InstanceBatch,
    ListingCursor,
    Progress,
    ResolvedBatches,
    SourceInstance,
)
from shared.identifiers import DicomIdentifier

BATCHING = Batching(batch_size=2, batches_in_flight=3, copies_per_batch=4)
CHECKPOINT = ExportCheckpoint("ab" * 16, "2026-11-22T08:00:00.000000Z", "https://a/c/x/errors.log", 10, BATCHING,
                              progress=Progress(3, 1))


def _round_trip(value):
    return type(value).from_dict(json.loads(json.dumps(value.to_dict())))


def test_checkpoint_round_trips_through_json():
    assert _round_trip(CHECKPOINT) == CHECKPOINT


def test_batch_groups_by_series_and_by_naming_and_round_trips():
    a, b, c = DicomIdentifier("1", "2", "3"), DicomIdentifier("1", "2", "4"), DicomIdentifier("1", "5", "6")
    d = DicomIdentifier("1", "2", "7")
    items = [SourceInstance(a, False, 10, "md5a"), SourceInstance(b, False, 20, None), SourceInstance(d, True),
             SourceInstance(c, True)]
    batch = InstanceBatch.of(items)
    assert [(g.study, g.series, g.sops, g.named, g.sizes, g.md5s) for g in batch.groups] == [
        ("1", "2", ("3", "4"), False, (10, 20), ("md5a", None)), ("1", "2", ("7",), True, (None,), (None,)),
        ("1", "5", ("6",), True, (None,), (None,))]
    assert list(batch.instances()) == items and len(batch) == 4
    assert _round_trip(batch) == batch
    request = CopyRequest("op", 7, 4, "auto")
    assert _round_trip(request) == request


def test_a_generation_resolves_and_copies_at_most_batches_in_flight():
    first = CHECKPOINT.advance(ResolvedBatches(5, 9, 6, ListingCursor("marker", True), 2), [])
    assert (first.position, first.continuation, first.batches_resolved, first.instances_resolved) == (
        6, ListingCursor("marker", True), 5, 9)
    assert first.progress == Progress(3, 3) and not first.resolved and first.percent_complete is None
    assert first.batches_to_copy() == range(0, 3)
    assert first.resolve_request().to_dict() == {
        "operation_id": "ab" * 16, "position": 6, "continuation": {"token": "marker", "found": True},
        "identifier_count": 10, "first_batch": 5, "batching": BATCHING.to_dict(), "partition": "Microsoft.Default",
        "deidentify": None}
    second = first.advance(ResolvedBatches(1, 1, 10, None, 0),
                           [BatchOutcome(2, 0, "copy-from-url"), BatchOutcome(1, 1, "auto"), BatchOutcome(2, 0)])
    assert (second.batches_copied, second.instances_copied, second.copy_mode) == (3, 6, "copy-from-url")
    assert second.resolved and not second.finished and second.percent_complete == 60
    assert second.status() == {"exported": 8, "skipped": 4, "percentComplete": 60}
    assert second.batches_to_copy() == range(3, 6) and second.copy_request(4) == CopyRequest(
        "ab" * 16, 4, 4, "copy-from-url")
    third = second.advance(None, [BatchOutcome(2, 0, "stream"), BatchOutcome(1, 0), BatchOutcome(1, 0)])
    assert third.finished and third.percent_complete == 100 and third.copy_mode == "copy-from-url"
    assert _round_trip(third) == third


def test_an_export_resolving_no_instances_is_complete_at_once():
    done = CHECKPOINT.advance(ResolvedBatches(0, 0, 10, None, 10), [])
    assert done.finished and done.percent_complete == 100 and done.batches_to_copy() == range(0, 0)


def test_outcome_progress_and_addition():
    assert BatchOutcome(3, 2).progress + Progress(1, 1) == Progress(4, 3)
    assert BatchOutcome.from_dict({"exported": 0, "skipped": 0, "refusal": "no"}).refusal == "no"
