"""An export of 100,000 instances, requested by naming all 100,000 of them: exact counts, every file once in the
manifest, bounded payloads.

The instances are small pydicom-made files (CT_small.dcm's header, UIDs rewritten in place) on an Azurite of
their own, so the rest of the session's emulator stays small.
"""
import base64
import json

import pytest
from azure.storage.blob import BlobServiceClient

from bench.export_throughput import instance_template, seed_store, study_layout
from tests.azurite import Azurite
from tests.export_client import export_body, working_files

INSTANCES = 100_000
PAYLOAD_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def scale_azurite():
    """A fresh emulator holding the 100,000 instances."""
    emulator = Azurite().start()
    yield emulator
    emulator.close()


@pytest.mark.scale
@pytest.mark.timeout(1500)
def test_a_hundred_thousand_named_instances_export_exactly_with_bounded_payloads(loop, host, scale_azurite,
                                                                                monkeypatch):
    # named instances are of unknown size, counted as EXPORT_BATCH_MAX_BYTES ÷ 100: 10 GiB lets 500 share a batch
    for name, value in {"AzureWebJobsStorage": scale_azurite.connection_string, "EXPORT_BATCH_SIZE": "500",
                        "EXPORT_BATCH_MAX_BYTES": str(10 * 1024 ** 3), "EXPORT_BATCHES_IN_FLIGHT": "8",
                        "EXPORT_COPIES_PER_BATCH": "16"}.items():
        monkeypatch.setenv(name, value)
    template, placeholders = instance_template(2048)
    _, instances = study_layout(INSTANCES, series_per_study=10, per_series=100)
    loop.run_until_complete(seed_store(scale_azurite.connection_string, instances, template, placeholders))
    service = BlobServiceClient.from_connection_string(scale_azurite.connection_string)
    service.create_container("export")
    values = ["/".join(instance) for instance in instances]
    host.payloads.clear()
    host.largest_payload = 0
    percents = []

    async def run():
        body = export_body(values, {"connectionString": scale_azurite.connection_string, "blobContainerName": "export"})
        response = await host.request("POST", "/v2/export", json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
        assert response.status_code == 202, response.get_body()[:300]
        operation_id = json.loads(response.get_body())["id"]

        async def watch(name, request, attempt):
            if name == "copy_batch":
                status = json.loads((await host.request("GET", f"/v2/operations/{operation_id}")).get_body())
                percents.append(status.get("percentComplete"))
        host.before_activity = watch
        started = loop.time()
        instance = await host.run(operation_id)
        elapsed = loop.time() - started
        final = json.loads((await host.request("GET", f"/v2/operations/{operation_id}")).get_body())
        return operation_id, instance, elapsed, final

    operation_id, instance, elapsed, final = loop.run_until_complete(run())
    assert (final["status"], final["results"]["exported"], final["results"]["skipped"], final["percentComplete"]) == (
        "succeeded", INSTANCES, 0, 100)
    assert host.largest_payload < PAYLOAD_LIMIT
    assert instance.longest_history <= 10 + 4 * 8  # the bound for 8 batches in flight, no retries
    assert instance.replay_seconds < 0.05 * elapsed
    first_known = next(i for i, percent in enumerate(percents) if percent is not None)
    known = percents[first_known:]  # once resolution has counted every instance, it stays known and only grows
    assert None not in known and known == sorted(known) and first_known < len(percents) // 3
    source = {b.name: b.content_settings.content_md5 for b in service.get_container_client("dicom").list_blobs()}
    exported = {b.name.split("/results/", 1)[1]: b.content_settings.content_md5
                for b in service.get_container_client("export").list_blobs(name_starts_with=f"{operation_id}/results/")}
    assert len(exported) == INSTANCES and exported == source  # every file present, each with the source's MD5
    manifest = [json.loads(line) for line in service.get_blob_client(
        "export", f"{operation_id}/manifest.jsonl").download_blob().readall().splitlines()]
    listed = {entry["path"].split("/results/", 1)[1]: entry["md5"] for entry in manifest}
    assert len(manifest) == len(listed) == INSTANCES  # each exported file listed exactly once
    assert listed == {name: base64.b64encode(md5).decode() for name, md5 in source.items()}
    assert service.get_blob_client("export", f"{operation_id}/errors.log").download_blob().readall() == b""
    for name in list(source)[::10_000]:
        assert service.get_blob_client("export", f"{operation_id}/results/{name}").download_blob().readall() == \
            service.get_blob_client("dicom", name).download_blob().readall()
    assert working_files(service, operation_id) is None
