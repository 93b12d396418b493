"""Attempts to make identifying data leak through deidentified_chunks, and to crash it; each was a leak or a crash."""
import io
import random
import struct
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID
from pydicom.sequence import Sequence

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.stream import NotDeidentifiableError
from tests.shared.deid.planted import KEY, all_uids, deidentify, planted_study, read

RTV_UID = "1.2.826.0.1.3680043.8.498.424242424242"
SWALLOWED_UID = "1.2.826.0.1.3680043.8.498.464646464646"


def sample(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def explicit_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def test_the_file_meta_keeps_only_what_part_10_requires():
    ds = read(sample("CT_small.dcm"))
    ds.file_meta.SourcePresentationAddress = "http://qhost.quimby.org"
    ds.file_meta.RTVCommunicationSOPInstanceUID = RTV_UID
    ds.file_meta.ImplementationVersionName = "QUIMBYVER"
    ds.file_meta.add_new(0x0002005B, "UI", "1.2.826.0.1.3680043.8.498.5555")    # unknown meta element
    output = deidentify(encoded(ds))
    assert [v for v in (b"qhost", RTV_UID.encode(), b"QUIMBYVER", b"498.5555") if v in output] == []
    meta = read(output).file_meta
    assert [int(t) for t in meta.keys()] == [0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010,
                                              0x00020012, 0x00020013]
    assert meta.ImplementationClassUID == PYDICOM_IMPLEMENTATION_UID
    assert meta.ImplementationVersionName.startswith("PYDICOM ")


@pytest.mark.filterwarnings("ignore::UserWarning")       # pydicom's, about the invalid UID written on purpose
def test_a_class_uid_value_that_is_no_uid_is_mapped_not_kept():
    """A length error swallowed the next element into Referenced SOP Class UID: kept, it carried an instance UID."""
    ds = read(sample("CT_small.dcm"))
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2\0 U@ " + SWALLOWED_UID
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SourceImageSequence = Sequence([item])
    output = deidentify(encoded(ds))
    assert SWALLOWED_UID.encode() not in output
    kept = read(output).SourceImageSequence[0].ReferencedSOPClassUID
    assert kept == Pseudonyms(KEY).uid("1.2.840.10008.5.1.4.1.1.2\0 U@ " + SWALLOWED_UID)
    plain = read(deidentify(sample("CT_small.dcm")))
    assert plain.SOPClassUID == plain.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


def test_a_patient_name_written_as_un_still_counts_for_clean_descriptors():
    ds = read(sample("CT_small.dcm"))
    ds.StudyDescription = "follow-up of Flumbert"
    ds.PatientName = "Flumbert^Quincy"
    ds["PatientName"].VR, ds["PatientName"].value = "UN", b"Flumbert^Quincy "
    output = deidentify(encoded(ds), DeidOptions(clean_descriptors=True))
    assert b"Flumbert" not in output
    assert "StudyDescription" not in read(output)


def test_retain_safe_private_keeps_a_listed_attribute_only_with_its_vr():
    ds = read(sample("MR_small.dcm"))
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")                              # B_value, as Siemens writes it: kept
    hidden = Dataset()
    hidden.PatientName = "Safesq^Quincy"
    block.add_new(0x0D, "SQ", Sequence([hidden]))                  # DiffusionDirectionality is CS, not SQ
    block.add_new(0x0E, "LO", "Safelo^Quincy")                     # DiffusionGradientDirection is FD, not LO
    output = deidentify(encoded(ds), DeidOptions(retain_safe_private=True))
    assert [v for v in (b"Safesq", b"Safelo") if v in output] == []
    private = {int(e.tag): e.value for e in read(output) if e.tag.is_private}
    assert private == {0x00190010: "SIEMENS MR HEADER", 0x0019100C: "1000"}


def test_elements_out_of_tag_order_after_the_pixel_data_are_refused():
    """A BurnedInAnnotation YES after the pixel data escaped the check made on the header."""
    trailer = explicit_element(0x0010, 0x0010, b"PN", b"Trailname^Q ") + explicit_element(0x0028, 0x0301, b"CS",
                                                                                          b"YES ")
    with pytest.raises(NotDeidentifiableError) as error:
        deidentify(sample("CT_small.dcm") + trailer)
    assert str(error.value) == ("The instance has elements out of tag order after its pixel data; it is not "
                                "exported.")


@pytest.mark.parametrize("find,replace,reason", [
    (b"\x10\x00\x10\x00PN", b"\x10\x00\x10\x00OO", "NotImplementedError"),       # a VR pydicom does not know
    (b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00UL\x02\x00", "BytesLengthException"),   # UL of 2 bytes
], ids=["unknown-vr", "two-byte-ul"])
def test_a_value_pydicom_fails_to_convert_is_refused_not_a_crash(find, replace, reason):
    data = sample("CT_small.dcm")
    assert data.count(find) == 1
    with pytest.raises(NotDeidentifiableError) as error:
        deidentify(data.replace(find, replace))
    assert str(error.value) == f"The instance is not a DICOM file pydicom can read ({reason})."


def _outcome(data: bytes, originals: list, options: DeidOptions) -> str:
    try:
        output = deidentify(data, options, chunk=509)
    except NotDeidentifiableError:
        return "refused"
    assert [u for u in originals if u in output] == []
    read(output)
    return "exported"


FUZZ_OPTIONS = DeidOptions(temporal="modified", clean_descriptors=True, retain_safe_private=True,
                           retain_patient_characteristics=True)


@pytest.mark.filterwarnings("ignore::UserWarning")       # pydicom's, reading damaged values back
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "planted C"])
def test_damaged_headers_are_refused_or_exported_without_an_original_uid(name):
    data = planted_study()["C"] if name == "planted C" else sample(name)
    originals = [u.encode() for u in all_uids(data)]
    header_end = len(data) - len(read(data).PixelData)
    outcomes = [_outcome(data[:cut], originals, DeidOptions()) for cut in range(0, header_end + 200, 97)]
    assert "refused" in outcomes
    rnd = random.Random(name)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rnd.choice((1, 2, 4))):
            damaged[rnd.randrange(132, header_end)] = rnd.choice((0, 0xFF, rnd.randrange(256)))
        for options in (DeidOptions(), FUZZ_OPTIONS):
            _outcome(bytes(damaged), originals, options)


def test_urls_the_table_does_not_list_are_removed_as_they_carry_hosts_and_original_uids():
    ds = read(sample("CT_small.dcm"))
    ds.RetrieveURL = f"http://pacs.quimby.org/wado/studies/{ds.StudyInstanceUID}"
    item = Dataset()
    item.RetrieveURI = f"http://pacs.quimby.org/wado/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    ds.ReferencedSeriesSequence = Sequence([item])
    output = deidentify(encoded(ds))
    assert [v for v in (b"quimby", str(ds.StudyInstanceUID).encode()) if v in output] == []
    result = read(output)
    assert "RetrieveURL" not in result and "RetrieveURI" not in result.ReferencedSeriesSequence[0]
