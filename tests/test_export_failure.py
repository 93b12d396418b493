"""An export whose copy fails for good ends only once every copy of its wave has settled, then fails generically."""
import asyncio
import json

from shared.api.status import INTERNAL_FAILURE
from tests.dicom_samples import new_uid
from tests.durable_episodes import TIMER_FIRED
from tests.export_client import container_settings, export_body, get_operation, post_export, working_files


async def _until(condition):
    while not condition():
        await asyncio.sleep(0.001)


def test_end_export_starts_only_after_every_sibling_copy_has_finished(loop, host, azurite, destination,
                                                                      put_instance, blob_service, monkeypatch):
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "3")
    study, series = new_uid(), new_uid()
    sops = sorted(new_uid() for _ in range(3))
    for sop in sops:
        put_instance(study, series, sop)
    response = post_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    operation_id = json.loads(response.get_body())["id"]
    real_copy, parameter = host.activities["copy_batch"]
    events, failures = [], []

    async def recorded_copy(request):
        outcome = await real_copy(request=request)
        events.append(f"copied batch {request['batch_index']}")
        return outcome

    async def fail_one_hold_one(name, request, attempt):
        if name == "end_export":
            events.append("end_export")
        elif name == "copy_batch" and request["batch_index"] == 0:
            failures.append(attempt)
            raise TimeoutError("storage kept timing out")
        elif name == "copy_batch" and request["batch_index"] == 1 and attempt == 1:
            # held until the orchestrator has been told batch 0 failed for good (its fourth retry timer fired)
            history = host.instances[operation_id].histories[-1]
            await asyncio.wait_for(_until(lambda: sum(e["EventType"] == TIMER_FIRED for e in history) == 4), 30)

    monkeypatch.setitem(host.activities, "copy_batch", (recorded_copy, parameter))
    host.before_activity = fail_one_hold_one
    instance = loop.run_until_complete(host.run(operation_id))
    _, state, _ = get_operation(loop, host, operation_id)
    assert failures == [1, 2, 3, 4]
    assert sorted(events[:-1]) == ["copied batch 1", "copied batch 2"] and events[-1] == "end_export"
    assert (instance.runtime_status, state["status"], state["errors"]) == ("Failed", "failed", [INTERNAL_FAILURE])
    assert (state["results"]["exported"], state["results"]["skipped"]) == (2, 0)  # the files that stay are counted
    written = sorted(b.name for b in destination.list_blobs(name_starts_with=f"{operation_id}/results/"))
    assert written == [f"{operation_id}/results/{study}/{series}/{sop}.dcm" for sop in sops[1:]]
    assert working_files(blob_service, operation_id) is None
