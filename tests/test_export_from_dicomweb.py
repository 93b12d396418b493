"""Exports from a real Orthanc over DICOMweb, end to end: the reference scenario, a deleted instance, bad credentials."""
import json

import pytest

from tests.dicom_samples import make_instance, new_uid
from tests.export_client import container_settings, error_lines, export_body, get_operation, post_export, run_export
from tests.orthanc import Orthanc, orthanc_missing


@pytest.fixture
def from_orthanc(orthanc, monkeypatch):
    """Point the app's DICOM store at the session's Orthanc."""
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", orthanc.dicomweb_url)
    return orthanc


def _put(orthanc, study, series, sop):
    data = make_instance(study, series, sop)
    return orthanc.upload(data), data


def test_reference_scenario_from_orthanc_is_exact_and_byte_identical(loop, host, azurite, destination, from_orthanc):
    study1, study2, study3 = new_uid(), new_uid(), new_uid()
    series1a, series1b, series2, series3 = new_uid(), new_uid(), new_uid(), new_uid()
    stored = {}
    for series in (series1a, series1a, series1b):
        sop = new_uid()
        stored[(study1, series, sop)] = _put(from_orthanc, study1, series, sop)[0]
    for _ in range(3):
        sop = new_uid()
        stored[(study2, series2, sop)] = _put(from_orthanc, study2, series2, sop)[0]
    singles = [(new_uid(), new_uid(), new_uid()), (study3, new_uid(), new_uid()), (study3, series3, new_uid())]
    for key in singles:
        stored[key] = _put(from_orthanc, *key)[0]
    _put(from_orthanc, study2, new_uid(), new_uid())  # another series of study2, not requested
    unknown = [f"{new_uid()}/{new_uid()}/{new_uid()}", f"{new_uid()}/{new_uid()}", new_uid()]
    values = [study1, f"{study2}/{series2}", "/".join(singles[0]), unknown[0], unknown[1],
              "/".join(singles[1]), "/".join(singles[2]), unknown[2]]

    state = run_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)))

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 9, 3)
    names = sorted(b.name for b in destination.list_blobs(name_starts_with=f"{operation_id}/results/"))
    assert names == sorted(f"{operation_id}/results/{s}/{se}/{sop}.dcm" for s, se, sop in stored)
    for (s, se, sop), orthanc_id in stored.items():
        assert destination.download_blob(f"{operation_id}/results/{s}/{se}/{sop}.dcm").readall() == \
            from_orthanc.stored_file(orthanc_id)
    assert sorted((line["identifier"], line["error"]) for line in error_lines(destination, operation_id)) == sorted([
        (unknown[0], "The specified instance cannot be found."),
        (unknown[1], "The specified series cannot be found."),
        (unknown[2], "The specified study cannot be found.")])
    assert host.instances[operation_id].output["copyMode"] == "stream"  # DICOMweb offers no source URL


def test_an_instance_deleted_from_orthanc_after_resolution_is_skipped_and_logged(loop, host, azurite, destination,
                                                                                from_orthanc):
    study, series = new_uid(), new_uid()
    ids = {sop: _put(from_orthanc, study, series, sop)[0] for sop in (new_uid(), new_uid(), new_uid())}
    gone = sorted(ids)[1]

    def delete_in_orthanc(name, request, attempt):
        if name == "copy_batch" and attempt == 1 and gone in ids:
            from_orthanc.delete(ids.pop(gone))

    host.before_activity = delete_in_orthanc
    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 2, 1)
    [line] = error_lines(destination, state["operationId"])
    assert line["identifier"] == f"{study}/{series}/{gone}"
    assert line["error"] == ("The instance could not be read from the DICOM store: it was deleted or changed after the "
                             "export started.")


@pytest.fixture(scope="module")
def guarded_orthanc():
    """An Orthanc that requires basic authentication."""
    missing = orthanc_missing()
    if missing:
        pytest.skip(f"DICOMweb tests need Orthanc: {missing}.")
    server = Orthanc(users={"exporter": "right-password"}).start()
    yield server
    server.close()


def test_wrong_credentials_fail_the_operation_with_a_message(loop, host, azurite, destination, guarded_orthanc,
                                                             monkeypatch):
    study, series, sop = new_uid(), new_uid(), new_uid()
    guarded_orthanc.upload(make_instance(study, series, sop))
    for name, value in {"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": guarded_orthanc.dicomweb_url,
                        "DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "exporter",
                        "DICOMWEB_PASSWORD": "wrong-password"}.items():
        monkeypatch.setenv(name, value)
    response = post_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))
    operation_id = json.loads(response.get_body())["id"]
    instance = loop.run_until_complete(host.run(operation_id))
    code, state, _ = get_operation(loop, host, operation_id)
    assert (instance.runtime_status, code, state["status"]) == ("Failed", 200, "failed")
    assert state["errors"] == [f"The DICOMweb server {guarded_orthanc.dicomweb_url} refused access to the DICOM "
                               "store (401 Unauthorized)."]
    assert not list(destination.list_blobs(name_starts_with=f"{operation_id}/results/"))
