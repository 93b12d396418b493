"""Whole exports through the orchestrator's replay: progress, continue-as-new, failures, retries, de-duplication."""
import json

import pytest

from shared.api.status import INTERNAL_FAILURE
from shared.export.instance_copier import InstanceCopier
from tests.azurite import KEY
from tests.dicom_samples import new_uid
from tests.export_client import (
    assert_manifest_matches,
    container_settings,
    error_lines,
    export_body,
    get_operation,
    post_export,
    run_export,
    working_files,
)


@pytest.fixture
def small_batches(monkeypatch):
    """One instance per copy activity and two activities per wave, so exports span several generations."""
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "2")


def _series(put_instance, count):
    study, series = new_uid(), new_uid()
    sops = [new_uid() for _ in range(count)]
    data = {sop: put_instance(study, series, sop) for sop in sops}
    return study, series, data


def _start(loop, host, azurite, destination, values, version=2):
    response = post_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)),
                           version)
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def test_created_time_and_progress_hold_across_continue_as_new(loop, host, azurite, destination, put_instance,
                                                               small_batches):
    study, series, data = _series(put_instance, 5)
    operation_id = _start(loop, host, azurite, destination, [study])
    _, first, _ = get_operation(loop, host, operation_id)
    seen, backend_created = [], set()

    async def poll(name, request, attempt):
        if name == "copy_batch":
            response = await host.request("GET", f"/v2/operations/{operation_id}")
            seen.append((response.status_code, json.loads(response.get_body()), response.headers.get("Location")))
            backend_created.add(host.instances[operation_id].created_time)

    host.before_activity = poll
    instance = loop.run_until_complete(host.run(operation_id))
    _, final, _ = get_operation(loop, host, operation_id)

    assert instance.generations == 3  # resolve one wave (2), then the rest beside copies of 2, then 2, then 1
    assert len(backend_created) == 3  # the backend reset its own createdTime at each continue-as-new
    assert {body["createdTime"] for _, body, _ in seen} == {first["createdTime"]} == {final["createdTime"]}
    # percentComplete appears once every instance is counted, after the second generation's resolution
    assert [(code, body["status"], body["results"]["exported"], body.get("percentComplete"))
            for code, body, _ in seen] == [(202, "running", 0, None), (202, "running", 0, None), (202, "running", 2, 40),
                                           (202, "running", 2, 40), (202, "running", 4, 80)]
    assert "percentComplete" not in first and final["percentComplete"] == 100
    assert {location for _, _, location in seen} == {f"http://localhost:7071/v2/operations/{operation_id}"}
    assert (final["status"], final["results"]["exported"], final["results"]["skipped"]) == ("succeeded", 5, 0)
    # each completion can be an episode of its own: the second generation (a resolve beside two copies, then
    # continue-as-new) is the longest, at 14 events; the bound, without retries, is 10 + 4 × batches in flight (18)
    assert instance.longest_history == 14


def test_repeated_and_contained_identifiers_export_each_instance_once(loop, host, azurite, destination, put_instance):
    study, series, data = _series(put_instance, 3)
    sop = next(iter(data))
    values = [f"{study}/{series}/{sop}", study, f" {study} ", f"{study}/{series}", f"{study}/{series}/{new_uid()}"]
    state = run_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)))
    assert (state["results"]["exported"], state["results"]["skipped"]) == (3, 0)
    assert error_lines(destination, state["operationId"]) == []


def test_v1_reports_completed(loop, host, azurite, destination, put_instance):
    study, _, _ = _series(put_instance, 1)
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)), 1)
    assert state["status"] == "completed"


def test_source_deleted_between_resolution_and_copy_is_skipped_and_logged(loop, host, azurite, destination,
                                                                          put_instance, store):
    study, series, data = _series(put_instance, 3)
    gone = sorted(data)[1]

    def delete_source(name, request, attempt):
        if name == "copy_batch" and attempt == 1:
            store.delete_blob(f"{study}/{series}/{gone}.dcm")

    host.before_activity = delete_source
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 2, 1)
    lines = error_lines(destination, operation_id)
    assert [(line["identifier"], line["error"]) for line in lines] == [(
        f"{study}/{series}/{gone}",
        "The instance could not be read from the DICOM store: it was deleted or changed after the export started.")]
    names = {b.name for b in destination.list_blobs(name_starts_with=f"{operation_id}/results/")}
    assert names == {f"{operation_id}/results/{study}/{series}/{sop}.dcm" for sop in data if sop != gone}


def test_a_setting_broken_mid_export_fails_it_at_once_naming_the_setting(loop, host, azurite, destination,
                                                                          put_instance, monkeypatch):
    study, _, _ = _series(put_instance, 2)
    operation_id = _start(loop, host, azurite, destination, [study])
    monkeypatch.setenv("EXPORT_COPY_MODE", "teleport")
    attempts = []
    host.before_activity = lambda name, request, attempt: attempts.append((name, attempt))
    instance = loop.run_until_complete(host.run(operation_id))
    _, state, _ = get_operation(loop, host, operation_id)
    assert (instance.runtime_status, state["status"]) == ("Failed", "failed")
    assert state["errors"] == ["The export service is misconfigured: App setting EXPORT_COPY_MODE must be one of "
                               "auto, put-from-url, copy-from-url, stream, not 'teleport'."]
    assert ("copy_batch", 2) not in attempts and ("resolve_batches", 2) not in attempts  # no retry can fix it


def test_a_destination_refusing_the_manifest_at_the_end_fails_the_export_and_still_tidies_up(
        loop, host, azurite, destination, put_instance, blob_service):
    study, _, _ = _series(put_instance, 2)
    operation_id = _start(loop, host, azurite, destination, [study])

    def delete_destination_before_the_end(name, request, attempt):
        if name == "end_export" and attempt == 1:
            destination.delete_container()

    host.before_activity = delete_destination_before_the_end
    instance = loop.run_until_complete(host.run(operation_id))
    _, state, _ = get_operation(loop, host, operation_id)
    assert (instance.runtime_status, state["status"], state["results"]["exported"]) == ("Failed", "failed", 2)
    assert state["errors"] == [f"Azure Blob Storage container '{destination.container_name}' does not exist in "
                               "account 'devstoreaccount1'."]
    assert working_files(blob_service, operation_id) is None


def test_destination_deleted_mid_export_fails_with_a_message(loop, host, azurite, destination, put_instance,
                                                             small_batches):
    study, _, _ = _series(put_instance, 4)
    operation_id = _start(loop, host, azurite, destination, [study])
    calls = []

    def delete_destination(name, request, attempt):
        calls.append(name)
        if calls.count("copy_batch") == 3:
            destination.delete_container()

    host.before_activity = delete_destination
    instance = loop.run_until_complete(host.run(operation_id))
    code, state, _ = get_operation(loop, host, operation_id)
    assert (instance.runtime_status, code, state["status"]) == ("Failed", 200, "failed")
    assert state["errors"] == [
        f"Azure Blob Storage container '{destination.container_name}' does not exist in account 'devstoreaccount1'."]
    assert state["results"]["exported"] == 2
    assert calls.count("copy_batch") == 4  # the refused wave is not retried


def test_batch_retried_after_finishing_returns_its_outcome_again(loop, host, azurite, destination, put_instance):
    study, series, data = _series(put_instance, 4)
    missing = f"{new_uid()}/{new_uid()}/{new_uid()}"
    copy_function = host.activities["copy_batch"][0]

    async def die_after_copying(name, request, attempt):
        if name == "copy_batch" and attempt == 1:
            await copy_function(request=request)
            raise ConnectionResetError("worker lost its connection after copying")

    host.before_activity = die_after_copying
    state = run_export(loop, host, export_body([study, missing],
                                               container_settings(azurite, destination.container_name)))
    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 4, 1)
    for sop, expected in data.items():
        assert destination.download_blob(f"{operation_id}/results/{study}/{series}/{sop}.dcm").readall() == expected
    # the finished attempt recorded its outcome: the retry copies, counts and logs nothing again
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [
        (missing, "The specified instance cannot be found.")]
    assert len(assert_manifest_matches(destination, operation_id)) == 4


def test_batch_retried_after_dying_half_way_copies_nothing_twice_and_counts_once(loop, host, azurite, destination,
                                                                                  put_instance, monkeypatch):
    monkeypatch.setenv("EXPORT_COPIES_PER_BATCH", "1")
    study, series, data = _series(put_instance, 4)
    real_copy, copies = InstanceCopier.copy, []

    async def dying_copy(self, item):
        if len(copies) == 2 and "died" not in copies:
            copies.append("died")
            raise ConnectionResetError("the worker died half-way through the batch")
        copies.append(item.identifier.sop)
        return await real_copy(self, item)

    monkeypatch.setattr(InstanceCopier, "copy", dying_copy)
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 4, 0)
    copied = [sop for sop in copies if sop != "died"]
    assert copies[2] == "died" and sorted(copied) == sorted(data)  # each instance copied once, across attempts
    for sop, expected in data.items():
        assert destination.download_blob(f"{operation_id}/results/{study}/{series}/{sop}.dcm").readall() == expected
    assert len(assert_manifest_matches(destination, operation_id)) == 4
    assert error_lines(destination, operation_id) == []


def test_activity_failing_every_attempt_fails_the_operation_generically(loop, host, azurite, destination,
                                                                        put_instance):
    study, _, _ = _series(put_instance, 1)
    attempts = []

    def always_fail(name, request, attempt):
        if name == "end_export":
            return
        attempts.append(attempt)
        raise TimeoutError("storage kept timing out")

    operation_id = _start(loop, host, azurite, destination, [study])
    host.before_activity = always_fail
    instance = loop.run_until_complete(host.run(operation_id))
    _, state, _ = get_operation(loop, host, operation_id)
    assert attempts == [1, 2, 3, 4]
    assert (instance.runtime_status, state["status"], state["errors"]) == ("Failed", "failed", [INTERNAL_FAILURE])


def test_sas_destination_exports_and_no_durable_payload_holds_the_sas(loop, host, destination, put_instance):
    from tests.test_function_app import _sas_uri
    study, series, data = _series(put_instance, 2)
    uri = _sas_uri(destination, "racw")
    host.payloads.clear()
    state = run_export(loop, host, export_body([study, new_uid()], {"blobContainerUri": uri}))
    operation_id = state["operationId"]
    assert (state["results"]["exported"], state["results"]["skipped"]) == (2, 1)
    assert state["results"]["errorHref"] == f"{destination.url}/{operation_id}/errors.log"
    signature = uri.split("sig=")[1].split("&")[0]
    everything = "\n".join(host.payloads) + json.dumps(state)
    assert len(host.payloads) >= 5 and signature not in everything and "sig=" not in everything


def test_no_durable_payload_holds_the_account_key(loop, host, azurite, destination, put_instance):
    study, _, _ = _series(put_instance, 1)
    host.payloads.clear()
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    everything = "\n".join(host.payloads) + json.dumps(state)
    assert len(host.payloads) >= 5 and KEY not in everything and "AccountKey" not in everything


def test_an_unreadable_source_instance_is_skipped_and_logged(loop, host, azurite, destination, put_instance, store):
    study, series, data = _series(put_instance, 3)
    archived = sorted(data)[0]
    store.get_blob_client(f"{study}/{series}/{archived}.dcm").set_standard_blob_tier("Archive")
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 2, 1)
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, state["operationId"])] == [
        (f"{study}/{series}/{archived}", "The instance could not be read from the DICOM store (409 BlobArchived).")]
