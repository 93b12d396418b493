"""Exports from an Orthanc that caps its query answers: every instance it counts is exported or named in errors.log."""
import json
import urllib.request

import pytest

from tests.dicom_samples import new_uid
from tests.export_client import container_settings, error_lines, export_body, run_export
from tests.orthanc import Orthanc


@pytest.fixture(scope="module")
def capped(orthanc) -> Orthanc:
    """An Orthanc that answers at most 5 (+1) matches per query (it depends on `orthanc` for the skip rule)."""
    server = Orthanc(settings={"LimitFindInstances": 5, "LimitFindResults": 5}).start()
    yield server
    server.close()


@pytest.fixture
def from_capped(capped, monkeypatch) -> Orthanc:
    """Point the app's DICOM store at the capped Orthanc."""
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", capped.dicomweb_url)
    return capped


def _study_count(server: Orthanc, study: str) -> int:
    """The server's own count of the study's instances (NumberOfStudyRelatedInstances)."""
    request = urllib.request.Request(f"{server.dicomweb_url}/studies?StudyInstanceUID={study}&includefield=00201208",
                                     headers={"Accept": "application/dicom+json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())[0]["00201208"]["Value"][0]


def test_a_study_beyond_the_cap_is_exported_whole_and_byte_identical(loop, host, azurite, destination, from_capped):
    study, stored = new_uid(), {}
    for series_number in (1, 2):
        series = new_uid()
        for number in range(1, 8):
            sop = new_uid()
            stored[(study, series, sop)] = from_capped.upload_numbered(study, series, sop, number, series_number)[0]

    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 14, 0)
    exported = {blob.name: destination.download_blob(blob.name).readall()
                for blob in destination.list_blobs(name_starts_with=f"{operation_id}/results/")}
    assert exported == {f"{operation_id}/results/{'/'.join(key)}.dcm": from_capped.stored_file(orthanc_id)
                        for key, orthanc_id in stored.items()}
    assert error_lines(destination, operation_id) == []
    assert _study_count(from_capped, study) == 14


def test_instances_the_server_will_not_list_are_logged_and_skipped(loop, host, azurite, destination, from_capped):
    study, listable, unlistable = new_uid(), new_uid(), new_uid()
    for number in range(1, 8):
        from_capped.upload_numbered(study, listable, new_uid(), number, 1)
    for _ in range(8):  # all numbered 1: neither paging nor asking by InstanceNumber gets past the cap
        from_capped.upload_numbered(study, unlistable, new_uid(), 1, 2)

    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 13, 2)
    assert [(line["identifier"], line["error"]) for line in error_lines(destination, operation_id)] == [(
        f"{study}/{unlistable}",
        "2 instances could not be listed: the DICOMweb server counts 8 instances in this series but lists 6, even when "
        "asked by InstanceNumber")]
    exported = list(destination.list_blobs(name_starts_with=f"{operation_id}/results/{study}/"))
    assert len(exported) == 13
    assert state["results"]["exported"] + state["results"]["skipped"] == _study_count(from_capped, study) == 15
