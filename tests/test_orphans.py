"""Working files left behind: a start the Durable extension refuses deletes them at once, and the timer function
sweeps away the work containers of ended or unknown operations after a grace period, keeping running and young ones."""
import asyncio
import json
import logging
import uuid
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp import web
from azure.functions.timer import TimerRequest

from shared.export.work_store import WorkStore, work_container_name
from shared.settings import WorkSettings
from tests.dicom_samples import new_uid
from tests.export_client import JSON, container_settings, export_body, post_export

GRACE_SECONDS = 2


@pytest.fixture
def prefix(monkeypatch):
    """A work-container prefix of this test's own, so the sweep sees no other test's containers."""
    name = f"orphans-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("EXPORT_WORK_CONTAINER_PREFIX", name)
    return name


def _work_containers(blob_service, prefix):
    return sorted(c.name for c in blob_service.list_containers(name_starts_with=f"{prefix}-"))


def _function(indexed_functions, name):
    return next(f for f in indexed_functions if f.get_function_name() == name).get_user_function()


class RefusingManagementApi:
    """The Durable extension's management API answering 500 to every orchestration start, noting the work files
    that existed at that moment."""

    def __init__(self, blob_service, prefix):
        self.blob_service, self.prefix, self.starts = blob_service, prefix, []
        self.runner, self.port = None, 0

    async def start(self) -> "RefusingManagementApi":
        async def refuse(request):
            instance_id = request.match_info["instance_id"]
            container = self.blob_service.get_container_client(work_container_name(self.prefix, instance_id))
            self.starts.append((instance_id, sorted(blob.name for blob in container.list_blobs())))
            return web.json_response({"Message": "The task hub is unavailable."}, status=500)
        app = web.Application()
        app.router.add_post("/durabletask/orchestrators/{name}/{instance_id}", refuse)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self


def _start_export_with(loop, host, indexed_functions, rpc_base_url, body):
    binding = dict(json.loads(host.client_binding()), rpcBaseUrl=rpc_base_url)
    request = func.HttpRequest("POST", "http://localhost:7071/v2/export", headers=JSON, params={},
                               route_params={"version": "2"}, body=json.dumps(body).encode())
    return loop.run_until_complete(_function(indexed_functions, "start_export")(req=request,
                                                                                client=json.dumps(binding)))


REFUSED = (503, "The export could not be started: the Durable Functions backend did not accept it. Nothing was "
                "exported; try again later.")


def test_a_start_the_extension_refuses_leaves_no_working_files(loop, host, indexed_functions, azurite, blob_service,
                                                               destination, prefix):
    api = loop.run_until_complete(RefusingManagementApi(blob_service, prefix).start())
    try:
        response = _start_export_with(loop, host, indexed_functions, f"http://127.0.0.1:{api.port}/durabletask/",
                                      export_body([new_uid()], container_settings(azurite, destination.container_name)))
    finally:
        loop.run_until_complete(api.runner.cleanup())
    assert (response.status_code, response.get_body().decode()) == REFUSED
    (operation_id, files_at_start), = api.starts
    assert files_at_start == ["destination", "identifiers/000000.json"]  # the sealed credential was there
    assert _work_containers(blob_service, prefix) == []
    assert operation_id not in host.instances


def test_a_start_that_cannot_reach_the_extension_leaves_no_working_files(loop, host, indexed_functions, azurite,
                                                                         blob_service, destination, prefix):
    response = _start_export_with(loop, host, indexed_functions, "http://127.0.0.1:9/durabletask/",
                                  export_body([new_uid()], container_settings(azurite, destination.container_name)))
    assert (response.status_code, response.get_body().decode()) == REFUSED
    assert _work_containers(blob_service, prefix) == []
    assert [b.name.endswith("/errors.log") for b in destination.list_blobs()] == [True]  # the check had passed


def _started(loop, host, azurite, destination):
    body = export_body([new_uid()], container_settings(azurite, destination.container_name))
    response = post_export(loop, host, body)
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def _terminated_outside_the_api(loop, host, azurite, destination):
    """An export terminated through the Durable extension's own API: its orchestration never tidied up."""
    operation_id = _started(loop, host, azurite, destination)
    loop.run_until_complete(df.DurableOrchestrationClient(host.client_binding()).terminate(operation_id, "by hand"))
    assert loop.run_until_complete(host.run(operation_id)).runtime_status == "Terminated"
    return operation_id


def _orphan_without_operation(loop, prefix):
    operation_id = uuid.uuid4().hex

    async def create():
        work = await WorkStore.connect(WorkSettings.from_environment())
        await work.create(operation_id)
        await work.save_identifiers(operation_id, ["1.2.3"])
    loop.run_until_complete(create())
    return operation_id


def test_the_sweep_deletes_exactly_the_idle_containers_of_ended_and_unknown_operations(
        loop, host, indexed_functions, azurite, blob_service, store, destination, prefix, monkeypatch, caplog):
    monkeypatch.setattr("shared.export.orphan_sweep.SWEEP_GRACE", timedelta(seconds=GRACE_SECONDS))
    old_running = _started(loop, host, azurite, destination)
    old_terminated = _terminated_outside_the_api(loop, host, azurite, destination)
    old_completed = _started(loop, host, azurite, destination)
    loop.run_until_complete(host.run(old_completed))
    assert host.instances[old_completed].runtime_status == "Completed"
    assert _work_containers(blob_service, prefix) == sorted(
        work_container_name(prefix, i) for i in (old_running, old_terminated))  # the completed one tidied up
    blob_service.create_container(work_container_name(prefix, old_completed))  # as if its end_export had died
    old_unknown = _orphan_without_operation(loop, prefix)
    old_unknown_written_lately = _orphan_without_operation(loop, prefix)
    blob_service.create_container(f"{prefix}-not-an-operation")
    loop.run_until_complete(asyncio.sleep(GRACE_SECONDS + 1.5))  # last-modified times count whole seconds
    blob_service.get_blob_client(work_container_name(prefix, old_unknown_written_lately), "active/step").upload_blob(
        b"")
    young_unknown = _orphan_without_operation(loop, prefix)
    young_terminated = _terminated_outside_the_api(loop, host, azurite, destination)
    caplog.set_level(logging.INFO)

    loop.run_until_complete(_function(indexed_functions, "sweep_orphaned_exports")(
        timer=TimerRequest(past_due=False), client=host.client_binding()))

    kept = [old_running, old_unknown_written_lately, young_unknown, young_terminated]
    assert _work_containers(blob_service, prefix) == sorted(
        [work_container_name(prefix, i) for i in kept] + [f"{prefix}-not-an-operation"])
    messages = [record.getMessage() for record in caplog.records if record.name == "root"]
    assert sorted(m for m in messages if "left behind" in m) == sorted([
        f"Export {old_terminated}: deleted the work container it left behind (Terminated)",
        f"Export {old_completed}: deleted the work container it left behind (Completed)",
        f"Export {old_unknown}: deleted the work container it left behind (no such operation)"])
    assert "Sweep of work containers: 7 examined, 3 deleted" in messages
    assert host.instances[old_running].runtime_status == "Pending"
