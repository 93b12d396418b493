"""Nothing lost under faults: a storage outage mid-export, 50 exports at once, and no secret in anything stored or logged.

Figures: the outage test survives one outage of 4 s with copies in flight; the tests check 60 + 250 + 3 instances
byte for byte.
"""
import asyncio
import json
import logging
import tempfile
import time
import uuid

from azure.storage.blob import BlobServiceClient

from tests.azurite import KEY, Azurite
from tests.dicom_samples import make_instance, new_uid
from tests.export_client import container_settings, error_lines, export_body, post_export, working_files
from tests.log_levels import detailed_logs


def _seed_study(container, count):
    study, series = new_uid(), new_uid()
    data = {}
    for _ in range(count):
        sop = new_uid()
        data[(study, series, sop)] = make_instance(study, series, sop)
        container.upload_blob(f"{study}/{series}/{sop}.dcm", data[(study, series, sop)])
    return study, data


def _assert_exported(container, operation_id, data):
    names = sorted(b.name for b in container.list_blobs(name_starts_with=f"{operation_id}/results/"))
    assert names == sorted(f"{operation_id}/results/{s}/{se}/{sop}.dcm" for s, se, sop in data)
    for (s, se, sop), expected in data.items():
        assert container.download_blob(f"{operation_id}/results/{s}/{se}/{sop}.dcm").readall() == expected


def _start(loop, host, body):
    response = post_export(loop, host, body)
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def _final(loop, host, operation_id):
    return json.loads(loop.run_until_complete(host.request("GET", f"/v2/operations/{operation_id}")).get_body())


def test_a_storage_outage_mid_export_loses_nothing(loop, host, monkeypatch):
    emulator = Azurite(location=tempfile.mkdtemp(prefix="azurite-data-")).start()
    try:
        for name, value in {"AzureWebJobsStorage": emulator.connection_string, "EXPORT_BATCH_SIZE": "5",
                            "EXPORT_BATCHES_IN_FLIGHT": "2", "EXPORT_COPIES_PER_BATCH": "2"}.items():
            monkeypatch.setenv(name, value)
        service = BlobServiceClient.from_connection_string(emulator.connection_string)
        store = service.create_container("dicom")
        study, data = _seed_study(store, 60)
        target = service.create_container("outage-target")
        operation_id = _start(loop, host, export_body([study, new_uid()],
                                                      container_settings(emulator, "outage-target")))
        outages = []

        def outage():
            emulator.stop()
            time.sleep(4)
            emulator.start()

        async def cut_power(name, request, attempt):
            if name == "copy_batch" and not outages:
                outages.append(asyncio.get_running_loop().run_in_executor(None, outage))
                await asyncio.sleep(0.2)  # the copies start while the emulator is going down

        host.before_activity = cut_power
        started = time.monotonic()
        instance = loop.run_until_complete(host.run(operation_id))
        assert time.monotonic() - started > 4  # the export waited out the outage
        loop.run_until_complete(outages[0])
        state = _final(loop, host, operation_id)
        assert (instance.runtime_status, state["status"], state["results"]["exported"],
                state["results"]["skipped"]) == ("Completed", "succeeded", 60, 1)
        _assert_exported(target, operation_id, data)
        assert [line["error"] for line in error_lines(target, operation_id)] == ["The specified study cannot be found."]
    finally:
        emulator.close()


def test_fifty_exports_at_once_are_each_exact_without_cross_talk(loop, host, azurite, store, blob_service):
    exports = []
    for _ in range(50):
        study, data = _seed_study(store, 5)
        container = blob_service.create_container(f"fifty-{uuid.uuid4().hex[:12]}")
        unknown = new_uid()
        body = export_body([study, unknown], container_settings(azurite, container.container_name))
        exports.append((_start(loop, host, body), container, data, unknown))

    async def run_all():
        return await asyncio.gather(*(host.run(operation_id) for operation_id, *_ in exports))

    instances = loop.run_until_complete(run_all())
    assert [i.runtime_status for i in instances] == ["Completed"] * 50
    for operation_id, container, data, unknown in exports:
        state = _final(loop, host, operation_id)
        assert (state["results"]["exported"], state["results"]["skipped"]) == (5, 1)
        assert {b.name.split("/", 1)[0] for b in container.list_blobs()} == {operation_id}
        _assert_exported(container, operation_id, data)
        assert [(line["identifier"], line["error"]) for line in error_lines(container, operation_id)] == [
            (unknown, "The specified study cannot be found.")]
        assert working_files(blob_service, operation_id) is None  # the sealed destination is gone with the rest


def test_no_secret_appears_in_payloads_statuses_logs_or_errors_log(loop, host, azurite, store, blob_service,
                                                                    caplog):
    from tests.test_function_app import _sas_uri
    caplog.set_level(logging.DEBUG)
    with detailed_logs():  # the most the app can log: the SDK's HTTP lines and a line per instance
        _export_twice_and_scan_for_secrets(loop, host, azurite, store, blob_service, caplog, _sas_uri)


def _export_twice_and_scan_for_secrets(loop, host, azurite, store, blob_service, caplog, sas_uri):
    study, data = _seed_study(store, 3)
    sas_container = blob_service.create_container(f"secret-{uuid.uuid4().hex[:12]}")
    key_container = blob_service.create_container(f"secret-{uuid.uuid4().hex[:12]}")
    uri = sas_uri(sas_container, "racw")
    signature = uri.split("sig=")[1].split("&")[0]
    host.payloads.clear()
    seen = []
    for body, container in ((export_body([study, new_uid()], {"blobContainerUri": uri}), sas_container),
                            (export_body([study], container_settings(azurite, key_container.container_name)),
                             key_container)):
        operation_id = _start(loop, host, body)
        loop.run_until_complete(host.run(operation_id))
        seen.append(json.dumps(_final(loop, host, operation_id)))
        seen.append(container.download_blob(f"{operation_id}/errors.log").readall().decode())
        _assert_exported(container, operation_id, data)
    from urllib.parse import unquote
    everything = "\n".join(host.payloads + seen + [caplog.text])
    assert len(host.payloads) >= 10 and len(caplog.records) > 50
    for secret in (signature, unquote(signature), KEY):
        assert secret not in everything
