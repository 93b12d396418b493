"""GET /v{n}/operations/{id}: status mapping for every runtime status, codes, Location, 404s."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.api.status import INTERNAL_FAILURE, describe_operation
from shared.destination.blob_destination import DestinationUnavailableError
from shared.export.checkpoint import ExportCheckpoint
from shared.export.payloads import Batching, Progress
from shared.export.work_store import OwnStorageError
from tests.durable_host import Instance
from tests.export_client import get_operation

CREATED = "2026-11-22T08:00:00.000000Z"
CHECKPOINT = ExportCheckpoint("ab" * 16, CREATED, "https://acct.blob.core.windows.net/c1/" + "ab" * 16 + "/errors.log",
                              1, Batching(100, 4, 8), progress=Progress(5, 1))

STATUS_CASES = [
    ("Pending", 1, 202, "notStarted"), ("Pending", 2, 202, "notStarted"),
    ("Running", 1, 202, "running"), ("Running", 2, 202, "running"),
    ("ContinuedAsNew", 2, 202, "running"), ("Suspended", 2, 202, "paused"),
    ("Completed", 1, 200, "completed"), ("Completed", 2, 200, "succeeded"),
    ("Failed", 1, 200, "failed"), ("Failed", 2, 200, "failed"),
    ("Terminated", 1, 200, "canceled"), ("Terminated", 2, 200, "canceled"),
    ("Canceled", 2, 200, "canceled"),
]


def _put_instance(host, runtime_status, custom_status=None, output=None):
    instance_id = CHECKPOINT.operation_id
    host.instances[instance_id] = Instance(instance_id, "export_orchestrator", json.dumps(CHECKPOINT.to_dict()),
                                           runtime_status=runtime_status, custom_status=custom_status, output=output,
                                           created_time="2026-11-22T09:30:00.000000Z",
                                           last_updated_time="2026-11-22T09:31:02.500000Z")
    return instance_id


@pytest.mark.parametrize("runtime_status,version,code,status", STATUS_CASES)
def test_runtime_status_maps_to_operation_status(loop, host, runtime_status, version, code, status):
    instance_id = _put_instance(host, runtime_status, custom_status={"exported": 7, "skipped": 2},
                                output="Orchestrator function 'export_orchestrator' failed: Export failed: Gone.")
    got_code, body, headers = get_operation(loop, host, instance_id, version)
    expected = {"operationId": instance_id, "type": "export", "createdTime": CREATED,
                "lastUpdatedTime": "2026-11-22T09:31:02.500000Z", "status": status,
                "results": {"exported": 7, "skipped": 2, "errorHref": CHECKPOINT.error_href,
                            "manifestHref": CHECKPOINT.error_href.replace("errors.log", "manifest.jsonl")}}
    if status == "failed":
        expected["errors"] = ["Gone."]
    assert (got_code, body) == (code, expected)
    href = f"http://localhost:7071/v{version}/operations/{instance_id}"
    assert headers.get("Location") == (href if code == 202 else None)
    assert "input" not in body and "sealed" not in json.dumps(body)


def test_counts_fall_back_to_the_checkpoint_before_the_first_custom_status(loop, host):
    instance_id = _put_instance(host, "Pending")
    assert get_operation(loop, host, instance_id)[1]["results"] == {
        "exported": 5, "skipped": 1, "errorHref": CHECKPOINT.error_href,
                            "manifestHref": CHECKPOINT.error_href.replace("errors.log", "manifest.jsonl")}


def test_unexpected_failure_gets_a_generic_message_without_internals(loop, host):
    instance_id = _put_instance(host, "Failed", output="Orchestrator function 'export_orchestrator' failed: "
                                                       "Activity function 'copy_batch' failed: KeyError: 'x'\n  File ...")
    assert get_operation(loop, host, instance_id)[1]["errors"] == [INTERNAL_FAILURE]


@pytest.mark.parametrize("error", [
    OwnStorageError("The service's own storage (AzureWebJobsStorage) did not answer (503 ServerBusy) after "
                    "repeated tries."),
    DestinationUnavailableError("Azure Blob Storage container 'c' in account 'a' did not take writes "
                                "(ServiceRequestError) after repeated tries.")])
def test_a_systemic_fault_that_outlasted_every_retry_is_named_in_the_failure(loop, host, error):
    output = (f"Orchestrator function 'export_orchestrator' failed: Activity function 'copy_batch' failed: "
              f"{type(error).__name__}: {error}\n  File ...")
    instance_id = _put_instance(host, "Failed", output=output)
    assert get_operation(loop, host, instance_id)[1]["errors"] == [str(error)[len("Export failed: "):]]


def test_unknown_operation_is_404(loop, host):
    assert get_operation(loop, host, "0" * 32)[:2] == (404, f"No export operation has the id '{'0' * 32}'.")


def test_malformed_operation_id_is_404_without_asking_the_extension(loop, host):
    assert get_operation(loop, host, "..%2F..%2Fadmin")[:2] == (404, "No export operation has the id '..%2F..%2Fadmin'.")


def test_other_orchestrations_are_not_export_operations(loop, host):
    host.instances["cd" * 16] = Instance("cd" * 16, "some_other_orchestrator", "{}", runtime_status="Running")
    assert get_operation(loop, host, "cd" * 16)[0] == 404


def test_describe_operation_reads_parsed_inputs_and_converts_times_to_utc():
    state = describe_operation("ab" * 16, "Running", CHECKPOINT.to_dict(), None, None,
                               datetime(2026, 1, 1, 12, 0), datetime(2026, 1, 1, 12, 5), 1)
    assert state.status_code == 202 and state.in_progress
    assert state.body["createdTime"] == CREATED
    assert state.body["lastUpdatedTime"] == "2026-01-01T12:05:00.000000Z"
    plus_two = timezone(timedelta(hours=2))
    later = describe_operation("ab" * 16, "Completed", None, None, None, datetime(2026, 1, 1, 14, 0, tzinfo=plus_two),
                               datetime(2026, 1, 1, 14, 5, 0, 250000, tzinfo=plus_two), 2)
    assert (later.body["createdTime"], later.body["lastUpdatedTime"], later.body["results"]) == (
        "2026-01-01T12:00:00.000000Z", "2026-01-01T12:05:00.250000Z",
        {"exported": 0, "skipped": 0, "errorHref": None, "manifestHref": None})
