"""Everything, query selection, partitions and dry runs against a real Orthanc over DICOMweb, end to end."""
import io
import json
import logging

import pydicom
import pytest

from tests.dicom_samples import make_instance, new_uid
from tests.export_client import JSON, container_settings, error_lines, get_operation
from tests.orthanc import Orthanc, orthanc_missing

STUDIES = {  # name: (StudyDate, PatientID, StudyDescription, AccessionNumber, modality of each series)
    "A": ("20240105", "PAT-001", "Chest CT routine", "ACC1", ["CT"]),
    "B": ("20240220", "PAT-002", "Brain MR", "ACC2", ["MR"]),
    "C": ("20231230", "PAT-001", "Chest follow-up", "ACC3", ["CT", "MR"]),
    "D": ("20240110", "PAT-003", "Abdomen", "ACC4", ["US"]),
}


def _instance(study, series, sop, **attributes):
    dataset = pydicom.dcmread(io.BytesIO(make_instance(study, series, sop)))
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _start_orthanc(settings=None):
    missing = orthanc_missing()
    if missing:
        pytest.skip(f"DICOMweb tests need Orthanc: {missing}.")
    return Orthanc(settings=settings).start()


@pytest.fixture(scope="module")
def library():
    """An Orthanc of this module's own holding STUDIES (two instances a series): name → {(study, series, sop): id}."""
    server = _start_orthanc()
    held = {}
    for name, (date, patient, description, accession, modalities) in STUDIES.items():
        study, held[name] = new_uid(), {}
        for modality in modalities:
            series = new_uid()
            for _ in range(2):
                sop = new_uid()
                data = _instance(study, series, sop, StudyDate=date, PatientID=patient, Modality=modality,
                                 StudyDescription=description, AccessionNumber=accession)
                held[name][(study, series, sop)] = server.upload(data)
    yield server, held
    server.close()


@pytest.fixture
def from_library(library, monkeypatch):
    """Point the app's store at the module's Orthanc."""
    server, held = library
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", server.dicomweb_url)
    return server, held


def _post(loop, host, body, path="/v2/export"):
    response = loop.run_until_complete(host.request("POST", path, json.dumps(body).encode(), JSON))
    text = response.get_body().decode()
    return response.status_code, (json.loads(text) if response.mimetype == "application/json" else text)


def _export(loop, host, body, path="/v2/export"):
    status, started = _post(loop, host, body, path)
    assert status == 202, started
    loop.run_until_complete(host.run(started["id"]))
    return get_operation(loop, host, started["id"])[1]


def _body(azurite, destination, filters=None):
    body = {"destination": {"type": "azureBlob", "settings": container_settings(azurite, destination.container_name)}}
    if filters is not None:
        body["source"] = {"type": "query", "settings": {"filters": filters}}
    return body


def _exported(destination, operation_id):
    prefix = f"{operation_id}/results/"
    return {tuple(b.name[len(prefix):-4].split("/")) for b in destination.list_blobs(name_starts_with=prefix)}


def test_everything_exports_every_instance_of_the_server_byte_for_byte(loop, host, azurite, destination,
                                                                       from_library, monkeypatch):
    server, held = from_library
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")  # 4 instances a resolution: the listing's cursor crosses studies
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "1")
    instances = {key: orthanc_id for studies in held.values() for key, orthanc_id in studies.items()}
    state = _export(loop, host, _body(azurite, destination))
    operation_id = state["operationId"]
    assert host.instances[operation_id].generations >= 10
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 10, 0)
    assert _exported(destination, operation_id) == set(instances)
    for (study, series, sop), orthanc_id in instances.items():
        blob = destination.download_blob(f"{operation_id}/results/{study}/{series}/{sop}.dcm").readall()
        assert blob == server.stored_file(orthanc_id)


@pytest.mark.parametrize("filters,expected", [
    ({"StudyDate": "20240101-20240131"}, "AD"),
    ({"studydate": "-20240101"}, "C"),
    ({"ModalitiesInStudy": ["MR"]}, "BC"),
    ({"ModalitiesInStudy": "us,ct"}, "ACD"),
    ({"StudyDescription": "Chest*"}, "AC"),
    ({"PatientID": "PAT-001", "StudyDescription": "*routine"}, "A"),
    ({"AccessionNumber": "ACC1"}, "A"),
    ({"StudyDescription": "B?ain*"}, "B"),
    ({"PatientID": "nobody"}, ""),
])
def test_a_query_exports_every_instance_of_each_matching_study(loop, host, azurite, destination, from_library,
                                                               filters, expected):
    held = from_library[1]
    state = _export(loop, host, _body(azurite, destination, filters))
    wanted = {key for name in expected for key in held[name]}
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == (
        "succeeded", len(wanted), 0)
    assert _exported(destination, state["operationId"]) == wanted
    assert error_lines(destination, state["operationId"]) == []


def test_a_dry_run_of_a_query_counts_studies_series_and_instances(loop, host, azurite, destination, from_library):
    status, answer = _post(loop, host, _body(azurite, destination, {"PatientID": "PAT-001"}), "/v2/export?dryRun=true")
    assert (status, answer) == (200, {"dryRun": True, "source": "query", "partition": "Microsoft.Default",
                                      "studies": 2, "series": 3, "instances": 6, "totalBytes": None, "skipped": 0})
    assert list(destination.list_blobs()) == []


def test_filter_values_appear_in_no_log_and_no_durable_payload(loop, host, azurite, destination, from_library,
                                                              caplog):
    caplog.set_level(logging.DEBUG)
    host.payloads.clear()
    state = _export(loop, host, _body(azurite, destination, {"PatientID": "PAT-002", "StudyDescription": "Brain*"}))
    assert state["results"]["exported"] == 2
    everything = "\n".join(host.payloads + [caplog.text, json.dumps(state)])
    assert "resolved 2 instances" in caplog.text and "started: 1 entries (query)" in caplog.text
    assert "PAT-002" not in everything and "Brain" not in everything


@pytest.fixture(scope="module")
def partitioned():
    """An Orthanc whose DICOMweb root is `/dicom-web/partitions/research/`, as a partition of DICOMWEB_URL
    `<server>/dicom-web` is reached, holding one study of two instances."""
    server = _start_orthanc({"DicomWeb": {"Enable": True, "Root": "/dicom-web/partitions/research/"}})
    study, series = new_uid(), new_uid()
    held = {(study, series, sop): server.upload(make_instance(study, series, sop)) for sop in (new_uid(), new_uid())}
    yield server, held
    server.close()


def test_a_partition_is_read_under_partitions_of_the_dicomweb_url(loop, host, azurite, destination, partitioned,
                                                                  monkeypatch):
    server, held = partitioned
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", server.dicomweb_url)
    study = next(iter(held))[0]
    inside = _export(loop, host, _body(azurite, destination), "/v2/partitions/research/export")
    named = _export(loop, host, {**_body(azurite, destination), "source": {
        "type": "identifiers", "settings": {"values": [study]}}}, "/v2/partitions/research/export")
    default = _export(loop, host, {**_body(azurite, destination), "source": {
        "type": "identifiers", "settings": {"values": [study]}}})
    assert (inside["results"]["exported"], _exported(destination, inside["operationId"])) == (2, set(held))
    assert (named["results"]["exported"], named["results"]["skipped"]) == (2, 0)
    assert (default["results"]["exported"], default["results"]["skipped"]) == (0, 1)  # not in the default partition
