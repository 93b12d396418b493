"""DELETE /v{n}/operations/{id}: a running export is terminated and reads canceled; unknown is 404, ended is 409."""
import asyncio
import json

import pytest

from shared.export.instance_copier import InstanceCopier
from tests.dicom_samples import new_uid
from tests.export_client import container_settings, export_body, get_operation, post_export, run_export, working_files


@pytest.fixture
def small_batches(monkeypatch):
    """One instance per copy activity and one activity per wave, so an export has work left after its first copy."""
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "1")


def _start(loop, host, azurite, destination, values, version=2):
    response = post_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)),
                           version)
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def _cancel(loop, host, operation_id, version=2):
    response = loop.run_until_complete(host.request("DELETE", f"/v{version}/operations/{operation_id}"))
    text = response.get_body().decode()
    return response.status_code, (json.loads(text) if response.mimetype == "application/json" else text)


def _results(container, operation_id):
    return sorted(b.name for b in container.list_blobs(name_starts_with=f"{operation_id}/results/"))


@pytest.mark.parametrize("version", [2, 1])
def test_cancel_mid_run_terminates_and_schedules_nothing_more(loop, host, azurite, destination, put_instance,
                                                              small_batches, version, blob_service):
    study, series = new_uid(), new_uid()
    for _ in range(3):
        put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study], version)
    started, answers = [], []

    async def cancel_during_first_copy(name, request, attempt):
        started.append(name)
        if name == "copy_batch" and not answers:
            answers.append(await host.request("DELETE", f"/v{version}/operations/{operation_id}"))

    host.before_activity = cancel_during_first_copy
    instance = loop.run_until_complete(host.run(operation_id))

    answer = answers[0]
    body = json.loads(answer.get_body())
    assert (answer.status_code, answer.mimetype, answer.headers.get("Location")) == (200, "application/json", None)
    assert (body["operationId"], body["type"], body["status"]) == (operation_id, "export", "canceled")
    assert body["results"]["exported"] == 0 and "errors" not in body
    # the first generation resolves one wave (one instance); the second resolves on beside the first copy, during
    # which the cancel comes: nothing was scheduled after it
    assert started == ["resolve_batches", "resolve_batches", "copy_batch"]
    assert (instance.runtime_status, instance.generations) == ("Terminated", 1)
    assert _results(destination, operation_id) == []  # the copy began after the cancel was acknowledged: refused
    assert working_files(blob_service, operation_id) is None
    status, state, headers = get_operation(loop, host, operation_id, version)
    assert (status, state["status"], state["results"]["exported"], headers.get("Location")) == (200, "canceled", 0, None)
    assert _cancel(loop, host, operation_id, version) == (
        409, f"The export operation '{operation_id}' has already ended (canceled) and cannot be canceled.")


def test_cancel_between_generations_stops_before_the_next_wave(loop, host, azurite, destination, put_instance,
                                                               small_batches):
    study, series = new_uid(), new_uid()
    for _ in range(3):
        put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    started = []

    async def cancel_at_second_copy(name, request, attempt):
        started.append(name)
        if started.count("copy_batch") == 2:
            assert (await host.request("DELETE", f"/v2/operations/{operation_id}")).status_code == 200

    host.before_activity = cancel_at_second_copy
    instance = loop.run_until_complete(host.run(operation_id))
    assert started == ["resolve_batches", "resolve_batches", "copy_batch", "copy_batch"]  # one wave resolved first
    assert (instance.runtime_status, instance.generations) == ("Terminated", 2)
    _, state, _ = get_operation(loop, host, operation_id)
    assert (state["status"], state["results"]["exported"]) == ("canceled", 1)
    assert len(_results(destination, operation_id)) == 1


def test_cancel_before_it_runs_means_it_never_runs(loop, host, azurite, destination, put_instance):
    study, series, sop = new_uid(), new_uid(), new_uid()
    put_instance(study, series, sop)
    operation_id = _start(loop, host, azurite, destination, [study])
    status, body = _cancel(loop, host, operation_id)
    assert (status, body["status"], body["results"]) == (
        200, "canceled", {"exported": 0, "skipped": 0, "errorHref": body["results"]["errorHref"],
                                 "manifestHref": body["results"]["errorHref"].replace("errors.log", "manifest.jsonl")})
    started = []
    host.before_activity = lambda name, request, attempt: started.append(name)
    instance = loop.run_until_complete(host.run(operation_id))
    assert (instance.runtime_status, started, _results(destination, operation_id)) == ("Terminated", [], [])


@pytest.mark.parametrize("version,word", [(2, "succeeded"), (1, "completed")])
def test_cancel_after_success_is_409(loop, host, azurite, destination, put_instance, version, word):
    study, series, sop = new_uid(), new_uid(), new_uid()
    put_instance(study, series, sop)
    final = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)),
                       version)
    assert _cancel(loop, host, final["operationId"], version) == (
        409, f"The export operation '{final['operationId']}' has already ended ({word}) and cannot be canceled.")
    assert host.instances[final["operationId"]].runtime_status == "Completed"
    assert get_operation(loop, host, final["operationId"], version)[1]["status"] == word


def test_cancel_after_failure_is_409(loop, host, azurite, destination, put_instance):
    study, series, sop = new_uid(), new_uid(), new_uid()
    put_instance(study, series, sop)
    operation_id = _start(loop, host, azurite, destination, [study])
    destination.delete_container()
    assert loop.run_until_complete(host.run(operation_id)).runtime_status == "Failed"
    assert _cancel(loop, host, operation_id) == (
        409, f"The export operation '{operation_id}' has already ended (failed) and cannot be canceled.")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("operation_id", ["0" * 32, "not-an-id", "A" * 32])
def test_cancel_of_an_unknown_operation_is_404(loop, host, operation_id, version):
    assert _cancel(loop, host, operation_id, version) == (404, f"No export operation has the id '{operation_id}'.")


def test_cancel_on_an_unsupported_version_is_404(loop, host):
    assert _cancel(loop, host, "0" * 32, 3) == (404, "API version 'v3' is not supported; use v1 or v2.")


def test_a_copy_not_yet_sent_when_cancel_revokes_is_never_sent(loop, host, azurite, destination, put_instance,
                                                                blob_service, monkeypatch):
    monkeypatch.setenv("EXPORT_COPIES_PER_BATCH", "1")
    study, series = new_uid(), new_uid()
    for _ in range(3):
        put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    gate, inside, events = asyncio.Event(), asyncio.Event(), []
    real_copy = InstanceCopier.copy

    async def slow_first_copy(self, instance):
        if not inside.is_set():
            inside.set()
            await gate.wait()
        await real_copy(self, instance)
        events.append("copied")

    monkeypatch.setattr(InstanceCopier, "copy", slow_first_copy)

    async def scenario():
        run = asyncio.ensure_future(host.run(operation_id))
        await inside.wait()
        cancel = asyncio.ensure_future(host.request("DELETE", f"/v2/operations/{operation_id}"))
        await asyncio.sleep(1.0)
        events.append("released")
        gate.set()
        response = await cancel
        events.append("acknowledged")
        files_at_ack = _results(destination, operation_id)
        instance = await run
        await asyncio.sleep(0.5)
        return response.status_code, instance, files_at_ack

    status, instance, files_at_ack = loop.run_until_complete(scenario())
    assert (status, instance.runtime_status, instance.output) == (200, "Terminated", "Canceled by the caller.")
    assert events == ["released", "acknowledged"]  # the cancel waited for the step; its held copy was refused
    assert files_at_ack == [] and _results(destination, operation_id) == []
    assert working_files(blob_service, operation_id) is None

