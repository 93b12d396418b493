"""Exporting everything and exporting from a partition of a blob-container store, through the real functions."""
import json
import uuid

import pytest

from tests.dicom_samples import make_instance, new_uid
from tests.export_client import JSON, assert_manifest_matches, container_settings, error_lines, get_operation

PARTITION = "research.2024_a-1"


@pytest.fixture
def own_store(blob_service, monkeypatch):
    """A store container of this test's own, so that "everything" is exactly what the test put there."""
    container = blob_service.create_container(f"store-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("DICOM_STORE_CONTAINER", container.container_name)
    return container


def _put(store, prefix=""):
    study, series, sop = new_uid(), new_uid(), new_uid()
    data = make_instance(study, series, sop)
    store.upload_blob(f"{prefix}{study}/{series}/{sop}.dcm", data)
    return (study, series, sop), data


def _export(loop, host, body, path="/v2/export"):
    response = loop.run_until_complete(host.request("POST", path, json.dumps(body).encode(), JSON))
    assert response.status_code == 202, response.get_body().decode()
    operation_id = json.loads(response.get_body())["id"]
    loop.run_until_complete(host.run(operation_id))
    return get_operation(loop, host, operation_id)[1]


def _results(destination, operation_id):
    prefix = f"{operation_id}/results/"
    return {tuple(b.name[len(prefix):-4].split("/")): destination.download_blob(b.name).readall()
            for b in destination.list_blobs(name_starts_with=prefix)}


def test_no_source_exports_every_instance_of_the_default_partition_over_several_listing_pages(
        loop, host, azurite, destination, own_store, monkeypatch):
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "2")  # 2 × 4 × 4 = 32 instances a resolution, listed 32 a page
    stored = dict(_put(own_store) for _ in range(40))
    _put(own_store, f"partitions/{PARTITION}/")  # another partition's: not exported
    own_store.upload_blob("README.txt", b"not an instance")

    state = _export(loop, host, {"destination": {"type": "azureBlob",
                                                 "settings": container_settings(azurite, destination.container_name)}})

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 40, 0)
    assert _results(destination, operation_id) == stored
    assert len(assert_manifest_matches(destination, operation_id)) == 40
    assert error_lines(destination, operation_id) == []
    assert host.instances[operation_id].generations >= 3  # the listing's cursor crossed continue-as-new


def test_a_partition_route_exports_that_partition_only_to_the_usual_paths(loop, host, azurite, destination,
                                                                          own_store, monkeypatch):
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "1")
    inside = dict(_put(own_store, f"partitions/{PARTITION}/") for _ in range(3))
    outside, _ = _put(own_store)
    body = {"destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}

    everything = _export(loop, host, body, f"/v2/partitions/{PARTITION}/export")
    named = _export(loop, host, {**body, "source": {"type": "identifiers", "settings": {"values": [
        "/".join(next(iter(inside))), "/".join(outside)]}}}, f"/v1/partitions/{PARTITION}/export")

    assert (everything["status"], everything["results"]["exported"], everything["results"]["skipped"]) == (
        "succeeded", 3, 0)
    assert _results(destination, everything["operationId"]) == inside
    assert host.instances[everything["operationId"]].generations >= 3  # the partition survived continue-as-new
    assert json.loads(host.instances[everything["operationId"]].input)["partition"] == PARTITION
    assert (named["status"], named["results"]["exported"], named["results"]["skipped"]) == ("succeeded", 1, 1)
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, named["operationId"])] == [
        ("/".join(outside), "The specified instance cannot be found.")]


def test_the_default_partition_by_name_is_the_unpartitioned_store(loop, host, azurite, destination, own_store):
    stored = dict([_put(own_store)])
    body = {"destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}
    state = _export(loop, host, body, "/v2/partitions/microsoft.default/export")
    assert (state["results"]["exported"], _results(destination, state["operationId"])) == (1, stored)


@pytest.mark.parametrize("name,shown", [("a b", '"a b"'), ("x" * 65, '"' + "x" * 56 + "..."),
                                        ("caf\u00e9", '"caf\\u00e9"'), ("a%2Fb", '"a%2Fb"')])
def test_a_malformed_partition_name_is_a_400_and_starts_nothing(loop, host, azurite, destination, name, shown):
    before = set(host.instances)
    body = {"destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}
    response = loop.run_until_complete(host.request("POST", f"/v2/partitions/{name}/export",
                                                    json.dumps(body).encode(), JSON))
    assert (response.status_code, response.get_body().decode()) == (
        400, f"The partition name {shown} is not valid: a partition name is 1 to 64 letters, digits, "
             "'.', '-' and '_'.")
    assert set(host.instances) == before and list(destination.list_blobs()) == []


def test_a_query_on_a_blob_store_is_a_400_naming_the_store_type(loop, host, azurite, destination):
    body = {"source": {"type": "query", "settings": {"filters": {"ModalitiesInStudy": "CT"}}},
            "destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}
    before = set(host.instances)
    response = loop.run_until_complete(host.request("POST", "/v2/export", json.dumps(body).encode(), JSON))
    assert (response.status_code, response.get_body().decode()) == (
        400, "The field 'source.type' is \"query\", which this service cannot answer: its DICOM store is a blob "
             "container (app setting DICOM_STORE_TYPE blob), which keeps no index of study attributes. Name studies, "
             "series or instances with 'identifiers', or leave out 'source' to export everything.")
    assert set(host.instances) == before and list(destination.list_blobs()) == []
