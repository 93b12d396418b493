"""DELETE keeps its promise under faults: a write in flight finishes before the answer, one that outlives the server
timeout never takes effect, and nothing reaches the destination after the answer."""
import asyncio
import json

import pytest

from shared.destination import write_gate
from shared.export import step_watch
from tests.azurite import ACCOUNT, KEY
from tests.dicom_samples import new_uid
from tests.export_client import export_body, post_export, working_files


@pytest.fixture
def one_copy_at_a_time(monkeypatch):
    """Streamed copies, one instance per batch, one batch and one copy in flight."""
    for name, value in {"EXPORT_COPY_MODE": "stream", "EXPORT_BATCH_SIZE": "1", "EXPORT_BATCHES_IN_FLIGHT": "1",
                        "EXPORT_COPIES_PER_BATCH": "1"}.items():
        monkeypatch.setenv(name, value)


def _start(loop, host, proxy, destination, values):
    settings = {"connectionString": f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                                    f"BlobEndpoint={proxy.url}/{ACCOUNT};",
                "blobContainerName": destination.container_name}
    response = post_export(loop, host, export_body(values, settings))
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def _results(container, operation_id):
    return sorted(b.name for b in container.list_blobs(name_starts_with=f"{operation_id}/results/"))


def _result_writes(proxy):
    return [r["path"] for r in proxy.requests if r["method"] == "PUT" and "/results/" in r["path"]]


def _cancel_while_stalled(loop, host, proxy, operation_id):
    """Run the export, send DELETE once a write is held at the proxy; return (code, results at the answer, instance)."""
    async def scenario(destination_files):
        run = asyncio.ensure_future(host.run(operation_id))
        await proxy.stalled.wait()
        answer = await host.request("DELETE", f"/v2/operations/{operation_id}")
        at_answer = destination_files()
        instance = await run
        return answer.status_code, at_answer, instance
    return scenario


def test_a_write_in_flight_finishes_before_the_answer_and_nothing_follows_it(loop, host, proxy, destination,
                                                                            put_instance, one_copy_at_a_time,
                                                                            blob_service):
    study, series = new_uid(), new_uid()
    for _ in range(3):
        put_instance(study, series, new_uid())
    operation_id = _start(loop, host, proxy, destination, [study])
    proxy.stall_next(1, 1.5, method="PUT", path_part="/results/")
    status, at_answer, instance = loop.run_until_complete(
        _cancel_while_stalled(loop, host, proxy, operation_id)(lambda: _results(destination, operation_id)))
    loop.run_until_complete(asyncio.sleep(0.5))
    assert (status, instance.runtime_status) == (200, "Terminated")
    assert len(at_answer) == 1  # the held write reached the destination before DELETE answered
    assert _results(destination, operation_id) == at_answer
    assert len(_result_writes(proxy)) == 1 and proxy.timed_out == []
    assert working_files(blob_service, operation_id) is None


def test_a_write_outliving_the_server_timeout_never_takes_effect_and_delete_answers_within_its_bound(
        loop, host, proxy, destination, put_instance, one_copy_at_a_time, blob_service, monkeypatch):
    monkeypatch.setattr(step_watch, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(step_watch, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(step_watch, "CLOCK_MARGIN_SECONDS", 0.2)
    monkeypatch.setattr(write_gate, "WRITE_TIMEOUT_SECONDS", 1)
    study, series = new_uid(), new_uid()
    for _ in range(2):
        put_instance(study, series, new_uid())
    operation_id = _start(loop, host, proxy, destination, [study])
    proxy.stall_next(1, 30.0, method="PUT", path_part="/results/")  # longer than the request's timeout=1

    async def timed_cancel():
        run = asyncio.ensure_future(host.run(operation_id))
        await proxy.stalled.wait()
        asked = asyncio.get_running_loop().time()
        answer = await host.request("DELETE", f"/v2/operations/{operation_id}")
        waited = asyncio.get_running_loop().time() - asked
        at_answer = _results(destination, operation_id)
        instance = await run  # the step's next write is refused by the gate
        return answer.status_code, waited, at_answer, instance
    status, waited, at_answer, instance = loop.run_until_complete(timed_cancel())
    assert (status, instance.runtime_status) == (200, "Terminated")
    # the held write timed out at the server (1 s); the step's next write was refused by the gate and the step ended,
    # so DELETE answered then, within its bound
    assert write_gate.WRITE_TIMEOUT_SECONDS <= waited <= step_watch.drain_bound()
    assert at_answer == [] and _results(destination, operation_id) == []
    assert len(proxy.timed_out) == 1 and len(_result_writes(proxy)) == 1  # the retry was never sent
    assert working_files(blob_service, operation_id) is None
