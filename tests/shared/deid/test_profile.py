"""The profile's effect on attributes, per option: exact values on the planted study's files."""
import datetime

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from shared.deid import profile_table
from shared.deid.header import METHOD, deidentify_dataset
from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.values import dummy, shift_date, shift_datetime
from tests.shared.deid.planted import (CLEAN_SERIES_DESCRIPTION, KEY, SECRETS, STUDY_DATE, deidentify, patient,
                                       planted_study, read, with_header_changes)


@pytest.fixture(scope="module")
def study():
    return planted_study()


def out(study, name="A", **options):
    return read(deidentify(study[name], DeidOptions(**options)))


def moved(date: str, days: int) -> str:
    return (datetime.date(int(date[:4]), int(date[4:6]), int(date[6:])) + datetime.timedelta(days=days)) \
        .strftime("%Y%m%d")


def test_the_basic_profile_alone(study):
    ds = out(study)
    assert (ds.PatientName, ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber, ds.StudyID) == ("", "", "", "", "")
    assert (ds.StudyDate, ds.StudyTime, ds.AcquisitionDate, ds.ReferringPhysicianName) == ("", "", "", "")
    assert (ds.SeriesDate, ds.ContentDate, ds.AcquisitionDateTime) == ("19000101", "19000101", "19000101000000")
    assert (ds.StationName, ds.InstitutionName, ds.OperatorsName, ds.DeviceSerialNumber) == ("ANONYMOUS",) * 4
    absent = ["PatientAge", "PatientWeight", "PatientAddress", "InstitutionAddress", "PerformingPhysicianName",
              "StudyDescription", "SeriesDescription", "ImageComments", "OtherPatientIDsSequence",
              "RequestAttributesSequence", "IssuerOfPatientID", "DigitalSignaturesSequence"]
    assert [k for k in absent if k in ds] == []
    assert [t for t in ds.keys() if t.is_private] == []
    assert ds.PatientID == Pseudonyms(KEY).patient_id(SECRETS["PatientID"])
    assert (ds.PatientIdentityRemoved, ds.DeidentificationMethod) == ("YES", METHOD)
    assert [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in ds.DeidentificationMethodCodeSequence] == \
        [("113100", "DCM", "Basic Application Confidentiality Profile")]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert len(METHOD) <= 64


def test_retain_device_identity_keeps_station_and_serial(study):
    ds = out(study, retain_device_identity=True)
    assert (ds.StationName, ds.DeviceSerialNumber) == (SECRETS["StationName"], SECRETS["DeviceSerialNumber"])
    assert ds.InstitutionName == "ANONYMOUS"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113109"]


def test_retain_institution_identity_keeps_the_institution(study):
    ds = out(study, retain_institution_identity=True)
    assert (ds.InstitutionName, ds.InstitutionAddress) == (SECRETS["InstitutionName"], SECRETS["InstitutionAddress"])
    assert ds.StationName == "ANONYMOUS"


def test_retain_patient_characteristics_keeps_sex_age_weight_not_the_name(study):
    ds = out(study, retain_patient_characteristics=True)
    assert (ds.PatientSex, ds.PatientAge, ds.PatientWeight) == ("F", "057Y", 61.5)
    assert (ds.PatientName, ds.PatientBirthDate) == ("", "")


def test_full_dates_keep_dates_and_times_but_not_the_birth_date(study):
    ds = out(study, temporal="full")
    assert (ds.StudyDate, ds.SeriesDate, ds.StudyTime) == (STUDY_DATE, STUDY_DATE, SECRETS["StudyTime"])
    assert ds.AcquisitionDateTime == SECRETS["AcquisitionDateTime"] + "+0100"
    assert ds.PatientBirthDate == ""
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_modified_dates_shift_by_one_offset_per_patient(study):
    a, b, d = (out(study, name, temporal="modified") for name in "ABD")
    pseudonyms = Pseudonyms(KEY)
    offset = pseudonyms.day_offset(SECRETS["PatientID"], SECRETS["IssuerOfPatientID"])
    other = pseudonyms.day_offset(patient(2)["PatientID"], SECRETS["IssuerOfPatientID"])
    assert offset != other and -3650 <= offset <= -1
    assert a.StudyDate == b.StudyDate == a.ContentDate == moved(STUDY_DATE, offset)
    assert d.StudyDate == moved(STUDY_DATE, other) != a.StudyDate
    assert a.AcquisitionDateTime == moved(STUDY_DATE, offset) + "101502.123+0100"
    assert a.StudyTime == SECRETS["StudyTime"]
    assert a.PatientBirthDate == ""
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in a.DeidentificationMethodCodeSequence] == ["113100", "113107"]


def test_retain_uids_keeps_every_uid(study):
    original, ds = read(study["B"]), out(study, "B", retain_uids=True)
    assert (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == \
        (original.SOPInstanceUID, original.StudyInstanceUID, original.FrameOfReferenceUID)
    assert ds.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
        original.ReferencedImageSequence[0].ReferencedSOPInstanceUID


def test_clean_descriptors_keeps_only_text_free_of_identifying_values(study):
    ds = out(study, clean_descriptors=True)
    assert ds.SeriesDescription == CLEAN_SERIES_DESCRIPTION
    assert "StudyDescription" not in ds and "ImageComments" not in ds     # a name; a name and a date
    dated = with_header_changes(study["A"], ImageComments=f"follow-up of {STUDY_DATE}",
                                ProtocolName="HEAD 2019-03-14")
    cleaned = read(deidentify(dated, DeidOptions(clean_descriptors=True)))   # dates: the basic action, X and X/D
    assert ("ImageComments" in cleaned, cleaned.ProtocolName) == (False, "ANONYMOUS")
    kept = read(deidentify(dated, DeidOptions(clean_descriptors=True, temporal="full")))
    assert (kept.ImageComments, kept.ProtocolName) == (f"follow-up of {STUDY_DATE}", "HEAD 2019-03-14")
    assert read(deidentify(dated, DeidOptions())).ProtocolName == "ANONYMOUS"


def test_retain_safe_private_keeps_only_listed_mr_diffusion_tags(study):
    ds = out(study, "C", retain_safe_private=True)
    assert [(str(t), ds[t].value) for t in ds.keys() if t.is_private] == \
        [("(0019,0010)", "SIEMENS MR HEADER"), ("(0019,100C)", "1000")]
    assert [t for t in out(study, "C").keys() if t.is_private] == []
    ct = read(study["A"])
    block = ct.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")
    source = Dataset()
    source.update(ct)
    source.file_meta = ct.file_meta
    deidentify_dataset(source, DeidOptions(retain_safe_private=True), Pseudonyms(KEY))
    assert [t for t in source.keys() if t.is_private] == []              # a CT: not on the list


def test_an_earlier_deidentification_is_added_to_not_replaced(study):
    earlier = Dataset()
    earlier.CodeValue, earlier.CodingSchemeDesignator, earlier.CodeMeaning = "113100", "DCM", "Earlier"
    data = with_header_changes(study["A"], DeidentificationMethod="EARLIER TOOL",
                               DeidentificationMethodCodeSequence=Sequence([earlier]))
    ds = read(deidentify(data, DeidOptions(retain_uids=True)))
    assert list(ds.DeidentificationMethod) == ["EARLIER TOOL", METHOD]
    assert [(i.CodeValue, i.CodeMeaning) for i in ds.DeidentificationMethodCodeSequence] == \
        [("113100", "Earlier"), ("113100", "Basic Application Confidentiality Profile"),
         ("113110", "Retain UIDs Option")]


def test_group_lengths_curves_and_overlays_are_removed_well_known_uids_kept(study):
    ds = read(study["A"])
    ds.add_new(0x00080000, "UL", 1234)
    ds.add_new(0x50000005, "US", 2)
    ds.add_new(0x60000010, "US", 16)
    ds.add_new(0x60003000, "OW", b"\xff" * 32)
    ds.FrameOfReferenceUID = "1.2.840.10008.1.4.1.1"         # Talairach Brain Atlas Frame of Reference
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodingSchemeUID = "T-A0100", "SRT", "2.16.840.1.113883.6.96"
    ds.AnatomicRegionSequence = Sequence([code])
    ds.file_meta.SendingApplicationEntityTitle = "QSENDER"
    deidentify_dataset(ds, DeidOptions(), Pseudonyms(KEY))
    assert [str(t) for t in ds.keys() if t.group in (0x5000, 0x6000) or t.element == 0] == []
    assert ds.FrameOfReferenceUID == "1.2.840.10008.1.4.1.1"
    assert ds.AnatomicRegionSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"
    assert "SendingApplicationEntityTitle" not in ds.file_meta and "SourceApplicationEntityTitle" not in ds.file_meta


def test_dummies_are_valid_for_their_vr():
    assert [dummy(vr) for vr in ("PN", "LO", "SH", "DA", "DT", "TM", "DS", "IS", "AS", "US", "FD", "OB")] == \
        ["ANONYMOUS", "ANONYMOUS", "ANONYMOUS", "19000101", "19000101000000", "000000", "0", "0", "000D", 0, 0.0,
         b"\0\0"]
    assert len(dummy("SQ")) == 1 and len(dummy("SQ")[0]) == 0


def test_dates_shift_whole_days_and_keep_the_time_of_datetimes():
    assert shift_date("20200301", -1) == "20200229"
    assert shift_date("2020", -1) == "" and shift_date("garbage!", -3) == ""
    assert shift_datetime("20200301235959.5-0500", -2) == "20200228235959.5-0500"
    assert shift_datetime("2020", -2) == ""


def test_the_basic_column_comes_from_dicom_anonymizer_2026c():
    assert profile_table.basic_counts() == {"D": 93, "Z": 42, "X": 412, "U": 55, "Z/D": 6, "X/Z": 11, "X/D": 23,
                                            "X/Z/D": 8, "X/Z/U*": 2}
    option_rows = (profile_table.PATIENT_CHARACTERISTICS_KEEP | profile_table.PATIENT_CHARACTERISTICS_CLEAN |
                   profile_table.INSTITUTION_IDENTITY | profile_table.DEVICE_IDENTITY | profile_table.DESCRIPTORS)
    assert [hex(t) for t in option_rows if t not in profile_table.BASIC] == []


def test_retain_uids_still_maps_the_uids_outside_its_column(study):
    ds = read(study["A"])
    item = Dataset()
    item.UID = "1.2.826.0.1.3680043.8.498.424242"
    ds.ContentSequence = Sequence([item])             # D in the Basic Profile: one empty item
    ds.ReferencedImageSequence = Sequence([item])     # X/Z/U*: kept; UID (0040,A124) is not in the UIDs column
    original_sop = ds.SOPInstanceUID
    deidentify_dataset(ds, DeidOptions(retain_uids=True), Pseudonyms(KEY))
    assert ds.ReferencedImageSequence[0].UID == Pseudonyms(KEY).uid("1.2.826.0.1.3680043.8.498.424242")
    assert ds.SOPInstanceUID == original_sop
    assert len(ds.ContentSequence) == 1 and len(ds.ContentSequence[0]) == 0
