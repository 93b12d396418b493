"""The store loader command: DICOM files land at their UIDs' path unchanged; other files are reported and skipped."""
import shutil

from pydicom.data import get_testdata_file

from tests.dicom_samples import make_instance, new_uid
from tools import store_loader


def test_loads_dicom_folders_and_reports_non_dicom(tmp_path, store, capsys):
    study, series = new_uid(), new_uid()
    sops = [new_uid(), new_uid()]
    (tmp_path / "nested").mkdir()
    files = {sops[0]: tmp_path / "a.dcm", sops[1]: tmp_path / "nested" / "b"}
    for sop, path in files.items():
        path.write_bytes(make_instance(study, series, sop))
    (tmp_path / "notes.txt").write_text("not DICOM")
    shutil.copy(get_testdata_file("no_meta.dcm"), tmp_path / "no_meta.dcm")
    shutil.copy(files[sops[0]], tmp_path / "copy.dcm")
    damaged = bytearray(files[sops[0]].read_bytes())
    damaged[damaged.index(b"\x02\x00\x10\x00UI") + 5] = 0xFF  # unknown VR: pydicom raises NotImplementedError
    (tmp_path / "damaged.dcm").write_bytes(bytes(damaged))

    assert store_loader.main([str(tmp_path)]) == 1

    out, err = capsys.readouterr()
    assert out == "loaded 2 instances into container 'dicom', skipped 4 files that are not DICOM or repeat another " \
                  "file's UIDs\n"
    assert f"skipped {tmp_path / 'damaged.dcm'}: not a readable DICOM file (NotImplementedError: " in err
    assert f"skipped {tmp_path / 'notes.txt'}: not a DICOM file" in err
    assert f"skipped {tmp_path / 'no_meta.dcm'}: not a DICOM file" in err
    assert f"skipped {tmp_path / 'copy.dcm'}: an earlier file has the same UIDs ({study}/{series}/{sops[0]}.dcm)" in err
    for sop, path in files.items():
        assert store.download_blob(f"{study}/{series}/{sop}.dcm").readall() == path.read_bytes()


def test_pydicom_samples_load(store, capsys):
    assert store_loader.main(["--pydicom-samples"]) == 0
    assert capsys.readouterr().out == ("loaded 116 instances into container 'dicom', skipped 60 files that are not "
                                       "DICOM or repeat another file's UIDs\n")
    assert store.get_blob_client("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322/1.3.6.1.4.1.5962.1.3.1.1.20040119072730."
                                 "12322/1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322.dcm").exists()
