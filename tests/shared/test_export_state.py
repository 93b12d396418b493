"""The payloads exchanged between functions: round trips, batching and checkpoint advance."""
import json

from shared.export_state import (Batching, BatchOutcome, CopyRequest, ExportCheckpoint, InstanceBatch,
                                 ListingCursor, Progress, ResolvedWave)
from shared.identifiers import DicomIdentifier

BATCHING = Batching(batch_size=2, batches_in_flight=3, copies_per_batch=4)
CHECKPOINT = ExportCheckpoint("ab" * 16, "2026-11-22T08:00:00.000000Z", "https://a/c/x/errors.log", "sealed",
                              tuple(f"1.{i}" for i in range(10)), None, BATCHING, Progress(3, 1))


def test_checkpoint_round_trips_through_json():
    assert ExportCheckpoint.from_dict(json.loads(json.dumps(CHECKPOINT.to_dict()))) == CHECKPOINT


def test_batch_groups_by_series_and_round_trips():
    instances = (DicomIdentifier("1", "2", "3"), DicomIdentifier("1", "2", "4"), DicomIdentifier("1", "5", "6"))
    batch = InstanceBatch.of(instances)
    assert [(g.study, g.series, g.sops) for g in batch.groups] == [("1", "2", ("3", "4")), ("1", "5", ("6",))]
    assert tuple(batch.instances()) == instances and len(batch) == 3
    request = CopyRequest("op", "sealed", batch, 4)
    assert CopyRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_resolve_request_names_at_most_one_wave_of_identifiers():
    assert CHECKPOINT.resolve_request().identifiers == tuple(f"1.{i}" for i in range(6))


def test_advance_drops_consumed_identifiers_and_keeps_the_rest():
    wave = ResolvedWave(batches=(), consumed=4, continuation=ListingCursor("marker", True), skipped=2)
    following = CHECKPOINT.advance(wave, Progress(9, 3))
    assert following.identifiers == tuple(f"1.{i}" for i in range(4, 10))
    assert (following.continuation, following.progress, following.created_time) == (
        ListingCursor("marker", True), Progress(9, 3), CHECKPOINT.created_time)
    assert ExportCheckpoint.from_dict(json.loads(json.dumps(following.to_dict()))) == following
    assert not following.finished and CHECKPOINT.advance(ResolvedWave((), 10, None, 0), Progress()).finished


def test_outcome_progress_and_addition():
    assert BatchOutcome(3, 2).progress + Progress(1, 1) == Progress(4, 3)
    assert BatchOutcome.from_dict({"exported": 0, "skipped": 0, "refusal": "no"}).refusal == "no"
