"""The store loader command: DICOM files land at their UIDs' path unchanged; everything else gets one clear line."""
import json
import shutil
import socket

import pytest
from pydicom.data import get_testdata_file

from tests.azurite import ACCOUNT, KEY
from tests.dicom_samples import make_instance, new_uid
from tools import store_loader

CT_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
NOT_DICOM = "not a DICOM file: it lacks the 'DICM' prefix and File Meta Information header that a DICOM file starts with"


@pytest.fixture
def no_settings_file(tmp_path):
    """A local.settings.json path that does not exist, so a developer's own file never leaks into a test."""
    return tmp_path / "absent" / "local.settings.json"


def _where(azurite, container="dicom"):
    return f"container '{container}' at {azurite.blob_endpoint}"


def test_loads_dicom_folders_and_lists_each_skipped_file(tmp_path, azurite, store, no_settings_file, capsys):
    study, series = new_uid(), new_uid()
    sops = [new_uid(), new_uid()]
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    files = {sops[0]: data / "a.dcm", sops[1]: data / "nested" / "b"}
    for sop, path in files.items():
        path.write_bytes(make_instance(study, series, sop))
    (data / "notes.txt").write_text("not DICOM")
    (data / "empty.dcm").write_bytes(b"")
    shutil.copy(get_testdata_file("no_meta.dcm"), data / "no_meta.dcm")
    shutil.copy(files[sops[0]], data / "copy.dcm")
    damaged = bytearray(files[sops[0]].read_bytes())
    damaged[damaged.index(b"\x02\x00\x10\x00UI") + 5] = 0xFF  # unknown VR: pydicom raises NotImplementedError
    (data / "damaged.dcm").write_bytes(bytes(damaged))

    assert store_loader.main([str(data)], settings_file=no_settings_file) == 1

    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"Loading 7 files into {_where(azurite)}",
        f"Loaded 2 instances in 1 study into {_where(azurite)}:",
        f"  {study}  2 instances",
        "Skipped 5 files (each listed above with its reason).",
    ]
    assert err.splitlines() == [
        f"skipped {data / 'copy.dcm'}: an earlier file has the same UIDs ({study}/{series}/{sops[0]}.dcm)",
        f"skipped {data / 'damaged.dcm'}: not a readable DICOM file (NotImplementedError: Unknown Value "
        "Representation '0x55 0xff' in tag (0002,0010))",
        f"skipped {data / 'empty.dcm'}: not a DICOM file: it is empty",
        f"skipped {data / 'no_meta.dcm'}: {NOT_DICOM}",
        f"skipped {data / 'notes.txt'}: {NOT_DICOM}",
    ]
    for sop, path in files.items():
        assert store.download_blob(f"{study}/{series}/{sop}.dcm").readall() == path.read_bytes()


def test_one_file_is_one_instance_in_one_study(tmp_path, azurite, store, no_settings_file, capsys):
    study, series, sop = new_uid(), new_uid(), new_uid()
    (tmp_path / "one.dcm").write_bytes(make_instance(study, series, sop))
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=no_settings_file) == 0
    assert capsys.readouterr() == (f"Loading 1 file into {_where(azurite)}\n"
                                   f"Loaded 1 instance in 1 study into {_where(azurite)}:\n"
                                   f"  {study}  1 instance\n", "")


def test_pydicom_samples_load_with_their_skips_counted(azurite, store, no_settings_file, capsys):
    assert store_loader.main(["--pydicom-samples"], settings_file=no_settings_file) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"Loading 176 files into {_where(azurite)}",
                         f"Loaded 116 instances in 29 studies into {_where(azurite)}:"]
    assert (len(lines), lines[-2:]) == (24, [
        "  ... and 9 more studies",
        "Skipped 60 files of pydicom's samples that are not DICOM or repeat another sample's UIDs (expected)."])
    assert store.get_blob_client(f"{CT_SMALL_STUDY}/1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322/"
                                 "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322.dcm").exists()


def test_a_missing_path_is_named_and_nothing_is_loaded(tmp_path, no_settings_file, capsys):
    (tmp_path / "real.dcm").write_bytes(make_instance(new_uid(), new_uid(), new_uid()))
    missing = tmp_path / "typo.dcm"
    assert store_loader.main([str(tmp_path / "real.dcm"), str(missing)], settings_file=no_settings_file) == 2
    assert capsys.readouterr() == ("", f"cannot load {missing}: no such file or folder\n")


def test_an_empty_folder_is_reported(tmp_path, no_settings_file, capsys):
    (tmp_path / "empty").mkdir()
    assert store_loader.main([str(tmp_path / "empty")], settings_file=no_settings_file) == 1
    assert capsys.readouterr() == ("", f"the folder {tmp_path / 'empty'} holds no files\n")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_store_that_does_not_answer_is_one_line(tmp_path, no_settings_file, capsys):
    port = _closed_port()
    (tmp_path / "one.dcm").write_bytes(make_instance(new_uid(), new_uid(), new_uid()))
    env = {"AzureWebJobsStorage": f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                                  f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"}
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=no_settings_file, env=env) == 2
    assert capsys.readouterr() == (
        "", f"cannot reach 127.0.0.1:{port}: is Azurite running? (bash scripts/run-local starts it)\n")


def _write_settings(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


def test_settings_come_from_local_settings_json_when_the_environment_lacks_them(tmp_path, azurite, blob_service,
                                                                                 capsys):
    settings = _write_settings(tmp_path / "local.settings.json", {
        "AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "loader-from-file"})
    study, series, sop = new_uid(), new_uid(), new_uid()
    (tmp_path / "one.dcm").write_bytes(make_instance(study, series, sop))
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=settings, env={}) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"Loading 1 file into {_where(azurite, 'loader-from-file')}"
    assert blob_service.get_blob_client("loader-from-file", f"{study}/{series}/{sop}.dcm").exists()


def test_the_environment_wins_over_local_settings_json(tmp_path, azurite, blob_service, capsys):
    settings = _write_settings(tmp_path / "local.settings.json", {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true", "DICOM_STORE_CONTAINER": "loader-from-file"})
    env = {"AzureWebJobsStorage": azurite.connection_string, "DICOM_STORE_CONTAINER": "loader-from-env"}
    study, series, sop = new_uid(), new_uid(), new_uid()
    (tmp_path / "one.dcm").write_bytes(make_instance(study, series, sop))
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=settings, env=env) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"Loading 1 file into {_where(azurite, 'loader-from-env')}"
    assert blob_service.get_blob_client("loader-from-env", f"{study}/{series}/{sop}.dcm").exists()


def test_no_store_setting_says_what_to_set_and_where_it_looked(tmp_path, no_settings_file, capsys):
    (tmp_path / "one.dcm").write_bytes(make_instance(new_uid(), new_uid(), new_uid()))
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=no_settings_file, env={}) == 2
    assert capsys.readouterr() == ("", (
        "No DICOM store is configured: set DICOM_STORE (a connection string), DICOM_STORE__blobServiceUri (managed "
        "identity) or AzureWebJobsStorage. Looked in the environment; there is no local.settings.json beside "
        "function_app.py (bash scripts/run-local writes one).\n"))


def test_a_local_settings_file_that_is_not_json_is_named(tmp_path, capsys):
    settings = tmp_path / "local.settings.json"
    settings.write_text("{\"Values\": {")
    (tmp_path / "one.dcm").write_bytes(make_instance(new_uid(), new_uid(), new_uid()))
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=settings, env={}) == 2
    assert capsys.readouterr() == ("", f"{settings} cannot be read as JSON: Expecting property name enclosed in "
                                       "double quotes: line 1 column 13 (char 12)\n")


def test_a_dicomweb_store_is_refused(tmp_path, no_settings_file, capsys):
    (tmp_path / "one.dcm").write_bytes(make_instance(new_uid(), new_uid(), new_uid()))
    env = {"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "http://127.0.0.1:8042/dicom-web"}
    assert store_loader.main([str(tmp_path / "one.dcm")], settings_file=no_settings_file, env=env) == 2
    assert capsys.readouterr() == ("", "DICOM_STORE_TYPE is dicomweb: this command loads a blob store only; store "
                                       "files on the DICOMweb server itself (STOW-RS).\n")


def test_help_lists_every_setting_it_reads(capsys):
    with pytest.raises(SystemExit) as exit_status:
        store_loader.main(["--help"])
    help_text = capsys.readouterr().out
    assert exit_status.value.code == 0
    for line in ["  DICOM_STORE                  connection string of the store's storage account",
                 "  DICOM_STORE__blobServiceUri  instead of DICOM_STORE: the account's blob endpoint, reached with "
                 "your",
                 "  AzureWebJobsStorage          used when neither DICOM_STORE setting is present",
                 "  DICOM_STORE_CONTAINER        the container to load into (default: dicom)",
                 "  DICOM_STORE_TYPE             blob (the default); a DICOMweb server takes files through its own "
                 "STOW-RS"]:
        assert line in help_text.splitlines()
    assert "local.settings.json beside function_app.py" in help_text


def test_a_partition_loads_under_its_folder_and_a_bad_name_is_refused(tmp_path, azurite, store, no_settings_file,
                                                                      capsys):
    study, series, sop = new_uid(), new_uid(), new_uid()
    (tmp_path / "one.dcm").write_bytes(make_instance(study, series, sop))
    assert store_loader.main(["--partition", "research", str(tmp_path / "one.dcm")],
                             settings_file=no_settings_file) == 0
    assert store.download_blob(f"partitions/research/{study}/{series}/{sop}.dcm").readall() == \
        (tmp_path / "one.dcm").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_status:
        store_loader.main(["--partition", "a/b", str(tmp_path / "one.dcm")], settings_file=no_settings_file)
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: The partition name \"a/b\" is not valid: a partition name is 1 to 64 letters, digits, "
        "'.', '-' and '_'.")
