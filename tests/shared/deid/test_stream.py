"""The streaming transformer on real files: nothing identifying left, pixels byte for byte, valid for DCMTK."""
import asyncio
import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import CTImageStorage

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.stream import NotDeidentifiableError, deidentified_chunks
from tests.shared.deid.planted import (KEY, SECRETS, STUDY_DATE, all_uids, deidentify, first_chunk_or_error,
                                       patient, pixel_digest, planted_study, read, with_header_changes)

SAMPLES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm",
           "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "waveform_ecg.dcm"]
ALL_OPTIONS = DeidOptions(temporal="modified", retain_patient_characteristics=True, retain_device_identity=True,
                          retain_institution_identity=True, retain_safe_private=True, clean_descriptors=True)


@pytest.fixture(scope="module")
def study():
    return planted_study()


def sample(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


RETAINED_BY_OPTIONS = {SECRETS["InstitutionName"], SECRETS["InstitutionAddress"], "Evergreen", SECRETS["StationName"],
                       SECRETS["DeviceSerialNumber"], SECRETS["StudyTime"]}


def leaks(original: bytes, output: bytes, dates: bool = True, retained=frozenset()) -> list:
    """The identifying values of `original` that `output` still holds (but for those `retained` on purpose)."""
    ds = read(original)
    values = [v for k, v in SECRETS.items() if k not in ("StudyDescription", "ImageComments")]
    values += [str(ds.PatientName).split("^")[0], str(ds.PatientID), str(ds.PatientBirthDate), str(ds.AccessionNumber),
               str(ds.StudyID), "Quentin", "Xavier", "Julius", "Waylon", "Nicholas", "Wallaby", "Evergreen",
               "QSOURCEAE", "ACME PRIVATE 1", "NOTSAFEVALUE"]
    values += all_uids(original)
    if dates:
        values.append(STUDY_DATE)
    return sorted({v for v in values if v.encode("latin-1") in output} - set(retained))


def dcmtk_accepts(data: bytes, tmp_path: Path) -> None:
    for tool in ("dcmftest", "dcmdump"):
        assert shutil.which(tool), f"{tool} is missing: install Debian dcmtk (apt-get install dcmtk)"
    path = tmp_path / "out.dcm"
    path.write_bytes(data)
    test = subprocess.run(["dcmftest", str(path)], capture_output=True, text=True)
    assert test.returncode == 0 and test.stdout.startswith("yes:"), test.stdout + test.stderr
    dump = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True)
    assert dump.returncode == 0 and dump.stderr == "", dump.stderr


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
@pytest.mark.parametrize("options", [DeidOptions(), ALL_OPTIONS], ids=["basic", "options"])
def test_no_identifying_value_is_left_anywhere_in_the_bytes(study, name, options):
    output = deidentify(study[name], options)
    retained = RETAINED_BY_OPTIONS if options.retain_device_identity else frozenset()
    assert leaks(study[name], output, dates=options.temporal is None, retained=retained) == []


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
def test_planted_files_keep_their_pixels_and_pass_dcmtk(study, name, tmp_path):
    output = deidentify(study[name])
    assert pixel_digest(output) == pixel_digest(study[name])
    assert read(output).PixelData == read(study[name]).PixelData
    dcmtk_accepts(output, tmp_path)


@pytest.mark.parametrize("name", SAMPLES)
def test_pydicom_samples_keep_their_pixels_round_trip_and_pass_dcmtk(name, tmp_path):
    original = sample(name)
    output = deidentify(original)
    before, after = read(original), read(output)
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    if "PixelData" in before:
        assert pixel_digest(output) == pixel_digest(original)
        assert after.PixelData == before.PixelData
    assert after.PatientIdentityRemoved == "YES"
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID != before.SOPInstanceUID
    assert [u for u in all_uids(original) if u.encode() in output] == []
    dcmtk_accepts(output, tmp_path)


@pytest.mark.parametrize("name", ["CT_small.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_tiny_chunks_give_the_same_bytes_as_one_chunk(name, study):
    for data in (sample(name), study["A"], study["C"]):
        whole = deidentify(data, chunk=len(data))
        assert deidentify(data, chunk=7) == whole
        assert deidentify(data, chunk=512) == whole


def test_elements_after_the_pixel_data_are_deidentified_padding_and_signatures_dropped(study):
    output = read(deidentify(study["A"]))
    after = [tag for tag in output.keys() if tag > 0x7FE00010]
    assert after == [0x7FE00020]                      # a public element kept; 7FE1 private, FFFA, FFFC gone
    assert output[0x7FE00020].value == b"\x01\x02\x03\x04"
    assert b"TRAILSECRET" not in deidentify(study["A"])


def test_uids_map_consistently_across_files_and_instances_of_the_key(study):
    a, b, c = (read(deidentify(study[n])) for n in "ABC")
    again = read(deidentify(study["B"]))
    other_key = read(deidentify(study["B"], key=b"another key, also long enough"))
    assert a.StudyInstanceUID == b.StudyInstanceUID == c.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != c.SeriesInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    series_ref = c.ReferencedSeriesSequence[0]
    assert series_ref.SeriesInstanceUID == a.SeriesInstanceUID
    assert series_ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert again.SOPInstanceUID == b.SOPInstanceUID and again.PatientID == b.PatientID
    assert other_key.SOPInstanceUID != b.SOPInstanceUID and other_key.PatientID != b.PatientID
    pseudonyms = Pseudonyms(KEY)
    original_a = read(study["A"])
    assert a.SOPInstanceUID == pseudonyms.uid(original_a.SOPInstanceUID)
    assert a.SOPInstanceUIDOfConcatenationSource == pseudonyms.uid(original_a.SOPInstanceUIDOfConcatenationSource)
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert a.PatientID == pseudonyms.patient_id(patient(1)["PatientID"])
    assert "SourceApplicationEntityTitle" not in a.file_meta


def test_burned_in_annotation_is_refused_before_any_chunk_unless_allowed():
    data = with_header_changes(sample("CT_small.dcm"), BurnedInAnnotation="YES")
    with pytest.raises(NotDeidentifiableError) as error:
        first_chunk_or_error(data)
    assert str(error.value) == ("The instance has burned-in annotation (BurnedInAnnotation is YES); it is not "
                                "exported unless 'deidentify.allowBurnedInAnnotation' is true.")
    allowed = read(deidentify(data, DeidOptions(allow_burned_in_annotation=True)))
    assert allowed.BurnedInAnnotation == "YES" and allowed.PatientIdentityRemoved == "YES"
    assert read(deidentify(with_header_changes(sample("CT_small.dcm"), BurnedInAnnotation="NO"))).PatientID


def test_recognizable_visual_features_are_refused_like_burned_in_annotation():
    data = with_header_changes(sample("CT_small.dcm"), RecognizableVisualFeatures="YES")
    with pytest.raises(NotDeidentifiableError) as error:
        first_chunk_or_error(data)
    assert str(error.value) == ("The instance has recognizable visual features (RecognizableVisualFeatures is YES); "
                                "it is not exported unless 'deidentify.allowBurnedInAnnotation' is true.")


def test_a_deflated_file_is_refused_before_any_chunk():
    with pytest.raises(NotDeidentifiableError) as error:
        first_chunk_or_error(sample("image_dfl.dcm"))
    assert str(error.value) == ("The instance's transfer syntax is deflated (1.2.840.10008.1.2.1.99), which cannot be "
                                "de-identified as a stream; it is not exported.")


def test_a_header_over_32_mib_is_refused_before_any_chunk():
    ds = read(sample("CT_small.dcm"))
    ds.add_new(0x00420011, "OB", bytes(33 << 20))       # Encapsulated Document, before the pixel data
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(NotDeidentifiableError) as error:
        first_chunk_or_error(out.getvalue())
    assert str(error.value) == ("The instance's header is larger than 32 MiB (the elements before its pixel data, "
                                "or the whole file without pixel data), which is too large to de-identify; it is "
                                "not exported.")


@pytest.mark.parametrize("data,reason", [
    (b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00ZZ\x04\x00abcd" * 3, "NotImplementedError"),
    (b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f", "it has no SOPClassUID and no SOPInstanceUID"),
    (sample("CT_small.dcm")[:1000], "it is truncated"),
    (b"not dicom at all" * 20, "no 'DICM' prefix"),
    (b"", "no 'DICM' prefix"),
])
def test_an_unreadable_file_is_refused_with_the_error_type_only(data, reason):
    with pytest.raises(NotDeidentifiableError) as error:
        first_chunk_or_error(data)
    assert str(error.value) == f"The instance is not a DICOM file pydicom can read ({reason})."


def test_a_file_truncated_inside_its_pixel_data_fails_after_the_header():
    data = sample("CT_small.dcm")[:-100]
    with pytest.raises(NotDeidentifiableError) as error:
        deidentify(data)
    assert str(error.value) == ("The instance ends inside its pixel data or a later element (the file is "
                                "truncated); it is not exported.")


def test_a_file_without_pixel_data_is_all_header():
    ds = read(sample("rtplan.dcm"))
    assert "PixelData" not in ds
    output = deidentify(sample("rtplan.dcm"), chunk=100)
    assert read(output).PatientIdentityRemoved == "YES"
    assert str(ds.PatientID).encode() not in output


def test_the_input_chunks_are_passed_on_as_the_same_objects_in_the_pixel_data():
    """Whole chunks inside the pixel data are yielded as received, not copied."""
    ds = read(sample("CT_small.dcm"))
    ds.Rows, ds.Columns, ds.PixelData = 512, 1024, bytes(range(256)) * 4096
    buffer = io.BytesIO()
    ds.save_as(buffer)
    original = buffer.getvalue()
    chunks = [bytearray(original[i:i + 4096]) for i in range(0, len(original), 4096)]   # slicing one copies it

    async def run():
        async def source():
            for chunk in chunks:
                yield chunk
        return [c async for c in deidentified_chunks(source(), DeidOptions(), Pseudonyms(KEY))]
    output = asyncio.run(run())
    passed = {id(piece) for piece in output} & {id(chunk) for chunk in chunks}
    assert len(passed) >= len(chunks) - 20             # all but those the header parse took and the boundaries
    assert pixel_digest(b"".join(output)) == pixel_digest(original)


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHL", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _undefined_sequence(group: int, element: int, vr: bytes, *items: bytes) -> bytes:
    body = b"".join(struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + item + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
                    for item in items)
    return struct.pack("<HH2sHL", group, element, vr, 0, 0xFFFFFFFF) + body + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def test_undefined_length_sequences_after_the_pixel_data_are_read_and_deidentified(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.777777777777"
    trailer = (_element(0x7FE1, 0x0010, b"LO", b"ACME TRAILER"),
               _undefined_sequence(0x7FE1, 0x1001, b"SQ", _element(0x0010, 0x0010, b"PN", b"Zorblatt^Q ")),
               _undefined_sequence(0xFFFA, 0xFFFA, b"SQ", _element(0x0400, 0x0100, b"UI", uid.encode() + b"\0")),
               _element(0xFFFC, 0xFFFC, b"OB", bytes(64)))
    original = sample("CT_small.dcm") + b"".join(trailer)
    whole = deidentify(original)
    assert deidentify(original, chunk=7) == whole
    assert [v for v in (b"Zorblatt", uid.encode(), b"ACME TRAILER") if v in whole] == []
    assert pixel_digest(whole) == pixel_digest(original)
    assert [t for t in read(whole).keys() if t > 0x7FE00010] == []
    dcmtk_accepts(whole, tmp_path)


def test_the_header_is_parsed_a_logarithmic_number_of_times(monkeypatch):
    from shared.deid import stream
    ds = read(sample("CT_small.dcm"))
    ds.add_new(0x00420011, "OB", bytes(1 << 20))        # a 1 MiB element before the pixel data
    buffer = io.BytesIO()
    ds.save_as(buffer)
    calls = []
    real = stream._parse
    monkeypatch.setattr(stream, "_parse", lambda data, eof: calls.append(len(data)) or real(data, eof))
    output = deidentify(buffer.getvalue(), chunk=4096)
    assert len(calls) == 6                               # 64 KiB, 128 KiB, ... 2 MiB: doubling
    assert read(output).EncapsulatedDocument == b"\0\0"  # D: a dummy
