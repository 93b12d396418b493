"""De-identified exports end to end, from the blob store and from Orthanc: pseudonymous paths, manifest and errors.log,
no original identifying value in any byte written, pixel data untouched, refusals, and the request's checks."""
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from pydicom.data import get_testdata_file

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.identifiers import DicomIdentifier
from tests.dicom_samples import new_uid
from tests.export_client import (assert_manifest_matches, container_settings, error_lines, export_body, post_export,
                                 run_export)
from tests.shared.deid.planted import KEY, SECRETS, all_uids, pixel_digest, planted_study, read, with_header_changes

BURNED_IN = ("The instance has burned-in annotation (BurnedInAnnotation is YES); it is not exported unless "
             "'deidentify.allowBurnedInAnnotation' is true.")
SAMPLES = ("CT_small.dcm", "MR_small.dcm")


@pytest.fixture
def deid_key(monkeypatch):
    """The deployment's de-identification key (EXPORT_DEID_KEY)."""
    monkeypatch.setenv("EXPORT_DEID_KEY", KEY.decode())
    return Pseudonyms(KEY)


def _identifier(data: bytes) -> DicomIdentifier:
    ds = read(data, stop_before_pixels=True)
    return DicomIdentifier(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))


def _sources() -> Dict[str, bytes]:
    """The planted study (A, B, C), another patient's study (D), a burned-in instance in A's series (E), and two of
    pydicom's real files."""
    files = planted_study()
    a = read(files["A"])
    files["E"] = with_header_changes(files["B"], SOPInstanceUID=new_uid(), BurnedInAnnotation="YES",
                                     StudyInstanceUID=a.StudyInstanceUID, SeriesInstanceUID=a.SeriesInstanceUID)
    for sample in SAMPLES:
        files[sample] = Path(get_testdata_file(sample)).read_bytes()
    return files


def _identifying_values(files: Dict[str, bytes]) -> List[str]:
    """What must not appear in any byte the export writes: the planted secrets, every original UID, and the real
    files' patient-level values."""
    values = [v for v in SECRETS.values() if len(v) >= 6]
    for data in files.values():
        values += all_uids(data)
        ds = read(data, stop_before_pixels=True)
        values += [str(ds.get(k, "")) for k in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate",
                                                 "AccessionNumber", "StudyID")
                   if len(str(ds.get(k, ""))) >= 6]  # (MR_small's institution, TOSHIBA, is also its Manufacturer's
        # name, TOSHIBA_MEC, which the profile keeps)
    return sorted(set(values))


def _everything_written(destination, operation_id: str) -> Dict[str, bytes]:
    return {blob.name: destination.download_blob(blob.name).readall()
            for blob in destination.list_blobs(name_starts_with=f"{operation_id}/")}


def _dcmtk_accepts(paths: List[Path]) -> None:
    assert shutil.which("dcmftest"), "dcmftest is missing: install Debian dcmtk (apt-get install dcmtk)"
    checked = subprocess.run(["dcmftest", *map(str, paths)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("yes:") == len(paths)


def _check_export(destination, operation_id: str, files: Dict[str, bytes], exported: List[str],
                  pseudonyms: Pseudonyms, tmp_path: Path) -> Dict[str, bytes]:
    """The exported files are exactly `exported`, under their pseudonyms, pixel data untouched, valid DICOM; nothing
    written anywhere carries an original identifying value. Returns every blob written."""
    expected = {}
    for name in exported:
        original = _identifier(files[name])
        expected[f"{operation_id}/results/{pseudonyms.identifier(original, DeidOptions())}.dcm"] = name
    written = _everything_written(destination, operation_id)
    results = {path: data for path, data in written.items() if "/results/" in path}
    assert sorted(results) == sorted(expected)
    for path, data in results.items():
        source = files[expected[path]]
        assert pixel_digest(data) == pixel_digest(source)
        ds = read(data)
        assert f"{operation_id}/results/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm" == path
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.PatientIdentityRemoved, ds.DeidentificationMethodCodeSequence[0].CodeValue) == ("YES", "113100")
    leaked = [(value, path) for value in _identifying_values(files) for path, data in written.items()
              if value.encode() in data]
    assert leaked == []
    for index, data in enumerate(results.values()):
        (tmp_path / f"{index}.dcm").write_bytes(data)
    _dcmtk_accepts(sorted(tmp_path.glob("*.dcm")))
    return written


def test_a_deidentified_export_from_the_blob_store(loop, host, azurite, destination, store, deid_key, tmp_path,
                                                   caplog):
    caplog.set_level(logging.INFO)
    files = _sources()
    for data in files.values():
        store.upload_blob(f"{_identifier(data)}.dcm", data, overwrite=True)
    missing = new_uid()
    ids = {name: _identifier(data) for name, data in files.items()}
    values = [ids["A"].study, ids["D"].study, str(ids["CT_small.dcm"]), f"{ids['MR_small.dcm'].study}/"
              f"{ids['MR_small.dcm'].series}", missing]
    body = {**export_body(values, container_settings(azurite, destination.container_name)), "deidentify": {}}

    state = run_export(loop, host, body)

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 6, 2)
    assert host.instances[operation_id].output["copyMode"] == "stream"  # never a server-side copy
    written = _check_export(destination, operation_id, files, ["A", "B", "C", "D", *SAMPLES], deid_key, tmp_path)
    # errors.log names the refused instance by its pseudonym, and echoes the identifier the caller sent
    assert sorted((line["identifier"], line["error"]) for line in error_lines(destination, operation_id)) == sorted([
        (str(deid_key.identifier(ids["E"], DeidOptions())), BURNED_IN),
        (missing, "The specified study cannot be found.")])
    entries = assert_manifest_matches(destination, operation_id)
    assert len(entries) == 6 and f"{operation_id}/manifest.jsonl" in written
    assert [value for value in _identifying_values(files) if value in caplog.text] == []  # nor in the logs
    # the series of one study stay together, under one pseudonymous study and series
    a, b = (deid_key.identifier(ids[n], DeidOptions()) for n in "AB")
    assert (a.study, a.series) == (b.study, b.series) and a.sop != b.sop
    # a later export of the same study from the same deployment gives the same names
    again = run_export(loop, host, {**body, "source": {"type": "identifiers", "settings": {"values": [ids["A"].study]}}})
    again_written = _everything_written(destination, again["operationId"])
    assert sorted(p.split("/", 1)[1] for p in again_written if "/results/" in p) == \
        sorted(p.split("/", 1)[1] for p in written if f"/results/{a.study}/" in p)


def test_a_deidentified_export_from_orthanc(loop, host, azurite, destination, orthanc, monkeypatch, deid_key,
                                             tmp_path):
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", orthanc.dicomweb_url)
    files = {name: data for name, data in _sources().items() if name in "ABCE"}
    for data in files.values():
        orthanc.upload(data)
    study = _identifier(files["A"]).study
    body = {**export_body([study], container_settings(azurite, destination.container_name)),
            "deidentify": {"retainDeviceIdentity": True}}

    state = run_export(loop, host, body)

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 3, 1)
    written = {p: d for p, d in _everything_written(destination, operation_id).items() if "/results/" in p}
    assert len(written) == 3
    options = DeidOptions(retain_device_identity=True)
    for data in written.values():
        ds = read(data)
        assert ds.StationName == SECRETS["StationName"]  # kept by the option
        assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == \
            [code for code, _ in options.method_codes()]
        assert SECRETS["PatientName"].encode() not in data and study.encode() not in data
        assert not any(uid.encode() in data for source in files.values() for uid in all_uids(source))
    assert [line["error"] for line in error_lines(destination, operation_id)] == [BURNED_IN]
    assert error_lines(destination, operation_id)[0]["identifier"] == \
        str(deid_key.identifier(_identifier(files["E"]), options))


def test_an_unknown_or_mistyped_option_is_a_400_naming_it(loop, host, azurite, destination, deid_key):
    body = export_body([new_uid()], container_settings(azurite, destination.container_name))
    for deidentify, message in [
            ({"retainUID": True}, "The field 'deidentify.retainUID' is not a de-identification option "
                                  "(did you mean 'retainUids'?)"),
            ({"retainUids": "yes"}, "The field 'deidentify.retainUids' must be true or false, not \"yes\"."),
            ([], "The field 'deidentify' must be an object of de-identification options")]:
        response = post_export(loop, host, {**body, "deidentify": deidentify})
        assert response.status_code == 400
        assert response.get_body().decode().startswith(message), response.get_body().decode()


def test_a_deidentified_export_without_the_key_is_a_500_naming_the_setting(loop, host, azurite, destination,
                                                                             monkeypatch):
    monkeypatch.delenv("EXPORT_DEID_KEY", raising=False)
    body = {**export_body([new_uid()], container_settings(azurite, destination.container_name)), "deidentify": {}}
    response = post_export(loop, host, body)
    assert response.status_code == 500
    assert response.get_body().decode() == (
        "The export service is misconfigured: The app setting EXPORT_DEID_KEY is missing or empty; "
        "de-identification needs a secret of at least 16 bytes (for example 32 random bytes, base64-encoded).")
    assert list(destination.list_blobs()) == []  # refused before anything was written
