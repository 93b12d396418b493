"""`?dryRun=true`: every check a start makes, then what would be exported; no operation, no file anywhere."""
import json
import os
import uuid

import pytest

from tests.dicom_samples import make_instance, new_uid
from tests.export_client import JSON, container_settings, export_body
from tests.test_function_app import _sas_uri


@pytest.fixture
def own_store(blob_service, monkeypatch):
    """A store container of this test's own."""
    container = blob_service.create_container(f"store-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("DICOM_STORE_CONTAINER", container.container_name)
    return container


def _dry_run(loop, host, body, path="/v2/export?dryRun=true"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = loop.run_until_complete(host.request("POST", path, raw, JSON))
    text = response.get_body().decode()
    return response.status_code, (json.loads(text) if response.mimetype == "application/json" else text)


def _put(store, study, series, prefix=""):
    data = make_instance(study, series, new_uid())
    sop = new_uid()
    store.upload_blob(f"{prefix}{study}/{series}/{sop}.dcm", data)
    return len(data)


def _work_containers(blob_service):
    return {c.name for c in blob_service.list_containers(name_starts_with="dicom-export-")}


def test_a_dry_run_counts_what_would_be_exported_and_writes_nothing(loop, host, azurite, destination, own_store,
                                                                   blob_service):
    study, series_a, series_b = new_uid(), new_uid(), new_uid()
    sizes = [_put(own_store, study, series_a), _put(own_store, study, series_a), _put(own_store, study, series_b)]
    other_study = new_uid()
    sizes.append(_put(own_store, other_study, new_uid()))
    single = next(own_store.list_blobs(name_starts_with=f"{other_study}/")).name[:-4]
    values = [study, single, f"{new_uid()}/{new_uid()}", f"{other_study}/{new_uid()}/{new_uid()}",
              f"{study}/{series_a}/{new_uid()}"]  # the last lies inside the study: dropped, not counted
    before, work_before = set(host.instances), _work_containers(blob_service)

    status, answer = _dry_run(loop, host, export_body(values, container_settings(azurite, destination.container_name)))

    assert (status, answer) == (200, {"dryRun": True, "source": "identifiers", "partition": "Microsoft.Default",
                                      "studies": 2, "series": 3, "instances": 4, "totalBytes": sum(sizes),
                                      "skipped": 2})
    assert set(host.instances) == before
    assert list(destination.list_blobs()) == []
    assert _work_containers(blob_service) == work_before


def test_a_dry_run_of_everything_in_a_partition(loop, host, azurite, destination, own_store):
    study = new_uid()
    sizes = [_put(own_store, study, new_uid(), "partitions/p1/") for _ in range(2)]
    _put(own_store, new_uid(), new_uid())  # the default partition's
    body = {"destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}
    assert _dry_run(loop, host, body, "/v1/partitions/p1/export?dryRun=TRUE") == (200, {
        "dryRun": True, "source": "everything", "partition": "p1", "studies": 1, "series": 2, "instances": 2,
        "totalBytes": sum(sizes), "skipped": 0})


def test_a_dry_run_refuses_what_a_start_refuses_with_the_same_message(loop, host, azurite, destination):
    read_only = export_body([new_uid()], {"blobContainerUri": _sas_uri(destination, "r")})
    missing = export_body([new_uid()], container_settings(azurite, "no-such-container"))
    for body in (read_only, missing, export_body(["1.2/"], container_settings(azurite, destination.container_name))):
        real = loop.run_until_complete(host.request("POST", "/v2/export", json.dumps(body).encode(), JSON))
        assert _dry_run(loop, host, body) == (400, real.get_body().decode())
    assert _dry_run(loop, host, read_only)[1].startswith("Not allowed to write to Azure Blob Storage container")
    assert _dry_run(loop, host, missing)[1] == (
        "Azure Blob Storage container 'no-such-container' does not exist in account 'devstoreaccount1'.")


def test_a_dry_run_with_a_write_only_sas_passes_the_destination_check_and_writes_nothing(loop, host, destination,
                                                                                       own_store):
    status, answer = _dry_run(loop, host, export_body([new_uid()], {"blobContainerUri": _sas_uri(destination, "cw")}))
    assert (status, answer["instances"], answer["skipped"]) == (200, 0, 1)
    assert list(destination.list_blobs()) == []


def test_a_dry_run_parameter_other_than_true_or_false_is_a_400(loop, host, azurite, destination):
    body = export_body([new_uid()], container_settings(azurite, destination.container_name))
    assert _dry_run(loop, host, body, "/v2/export?dryRun=yes") == (
        400, "The query parameter 'dryRun' is \"yes\": give true or false.")


def test_a_dry_run_without_a_sealing_key_is_a_500_as_a_start_is(loop, host, azurite, destination, monkeypatch):
    monkeypatch.delenv("EXPORT_SEALING_KEY")
    status, text = _dry_run(loop, host, export_body([new_uid()], container_settings(azurite,
                                                                                    destination.container_name)))
    assert status == 500 and text.startswith("The export service is misconfigured: App setting EXPORT_SEALING_KEY")
    assert "EXPORT_SEALING_KEY" not in os.environ
