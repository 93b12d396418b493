"""What PS3.15 Table E.1-1 says to do with each attribute, for the Basic Profile and the options a request chose.

Sources:
- Basic Profile column: the tables of `dicom-anonymizer` 2.1.0 (Kitware, BSD-3-Clause), module
  `dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c` (PS3.15 2026c), imported at run time, not copied.
  Its lists are per action (D, Z, X, U, Z/D, X/Z, X/D, X/Z/D, X/Z/U*); the three masks it has are handled here as
  rules: every 50xx curve element and every element of the even 60xx overlay groups is removed (the table
  names only 60xx,3000 and 60xx,4000; removing the whole group keeps no orphaned overlay attributes).
- Compound actions, without the IODs to say which type applies: X/Z -> Z, X/D -> D, X/Z/D -> D, Z/D -> D, and
  X/Z/U* -> the sequence is kept and every UID in it is mapped (so references stay valid).
- Option columns: the short lists below, written from the standard's table; each was checked against the
  (2020) machine-readable edition of the table. Where a list is shorter than the current standard, that row keeps
  its Basic Profile action: less is retained, never more. Rules instead of lists, as measured on the 2024 table:
  the two temporal columns are the table's DA, DT and TM rows except the birth date/time and GPS rows, plus
  Timezone Offset From UTC; the Retain UIDs column is the table's UI rows except UID (0040,A124) and Digital
  Signature UID (0400,0100), plus the X/Z/U* reference sequences.
- What C (clean) means here: for the temporal column with modified dates, DA values and DT's date part move by
  the patient's day offset (TM and DT's time are kept: a whole-day shift keeps intervals and times of day); for
  the other columns, a text is kept only when it holds none of the instance's identifying values (identifying.py),
  otherwise the Basic Profile action applies.
- Precedence when options meet on one row: K (keep) beats C (clean), which beats the Basic Profile action.
"""
from __future__ import annotations

from typing import Dict, FrozenSet, Iterable, Optional

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as _table
from pydicom.datadict import tag_for_keyword

from shared.deid.options import DeidOptions

# The actions this package applies.
KEEP = "K"            # keep (a sequence's items are still processed)
REMOVE = "X"
EMPTY = "Z"           # zero length
DUMMY = "D"           # a dummy value of the element's VR (a mapped UID for UI)
MAP_UID = "U"         # a UID consistently mapped (pseudonyms.uid)
CLEAN_TEXT = "C"      # kept only when the text holds none of the instance's identifying values
SHIFT_DATE = "S"      # a date moved by the patient's day offset (DA, and DT's date part)

_RESOLVED = {"D": DUMMY, "Z": EMPTY, "X": REMOVE, "U": MAP_UID, "Z/D": DUMMY, "X/Z": EMPTY, "X/D": DUMMY,
             "X/Z/D": DUMMY, "X/Z/U*": KEEP}
_LISTS = {"D": "D_TAGS", "Z": "Z_TAGS", "X": "X_TAGS", "U": "U_TAGS", "Z/D": "Z_D_TAGS", "X/Z": "X_Z_TAGS",
          "X/D": "X_D_TAGS", "X/Z/D": "X_Z_D_TAGS", "X/Z/U*": "X_Z_U_STAR_TAGS"}


def _basic_column() -> Dict[int, str]:
    column: Dict[int, str] = {}
    for code, name in _LISTS.items():
        for entry in getattr(_table, name):
            if len(entry) == 2:                      # (group, element); the 4-tuples are the 50xx/60xx masks
                column[entry[0] << 16 | entry[1]] = code
    return column


BASIC: Dict[int, str] = _basic_column()           # tag -> the table's Basic Profile code, e.g. "X/Z/D"


def _tags(keywords: Iterable[str]) -> FrozenSet[int]:
    tags = {tag_for_keyword(keyword) for keyword in keywords}
    if None in tags:
        raise RuntimeError("unknown DICOM keyword in a de-identification list")
    return frozenset(tags)


PATIENT_BIRTH_AND_GPS = _tags(["PatientBirthDate", "PatientBirthTime"]) | {0x00160077}
TIMEZONE = _tags(["TimezoneOffsetFromUTC"])
UIDS_NOT_RETAINED = _tags(["UID", "DigitalSignatureUID"])
PATIENT_CHARACTERISTICS_KEEP = _tags([
    "EthnicGroup", "PatientAge", "PatientSex", "PatientSexNeutered", "PatientSize", "PatientWeight",
    "PregnancyStatus", "SmokingStatus"])
PATIENT_CHARACTERISTICS_CLEAN = _tags(["Allergies", "PatientState", "PreMedication", "SpecialNeeds"])
INSTITUTION_IDENTITY = _tags([
    "InstitutionName", "InstitutionAddress", "InstitutionCodeSequence", "InstitutionalDepartmentName",
    "InstitutionalDepartmentTypeCodeSequence", "ClinicalTrialCoordinatingCenterName",
    "ClinicalTrialProtocolEthicsCommitteeName", "ClinicalTrialSiteID", "ClinicalTrialSiteName"])
DEVICE_IDENTITY = _tags([
    "StationName", "DeviceSerialNumber", "DeviceUID", "DetectorID", "GantryID", "PlateID", "CassetteID",
    "GeneratorID", "PerformedStationName", "PerformedStationAETitle", "ScheduledStationName",
    "ScheduledStationAETitle", "UDISequence", "UniqueDeviceIdentifier", "SourceSerialNumber", "DeviceLabel",
    "DeviceDescription"])
DESCRIPTORS = _tags([
    "StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments", "AdditionalPatientHistory",
    "PatientComments", "StudyComments", "RequestedProcedureDescription", "PerformedProcedureStepDescription",
    "ScheduledProcedureStepDescription", "AcquisitionComments", "AdmittingDiagnosesDescription",
    "DerivationDescription", "ContrastBolusAgent", "CommentsOnThePerformedProcedureStep", "FrameComments",
    "VisitComments", "ServiceEpisodeDescription", "ReasonForTheRequestedProcedure", "RequestedProcedureComments",
    "ImagingServiceRequestComments", "AcquisitionDeviceProcessingDescription", "DischargeDiagnosisDescription",
    "Occupation", "MedicalAlerts", "Allergies"])
DATE_VRS = ("DA", "DT", "TM")


def is_curve_or_overlay(tag: int) -> bool:
    """50xx curves, and the even 60xx overlay groups: removed whole."""
    group = tag >> 16
    return group & 0xFF00 == 0x5000 or (group & 0xFF00 == 0x6000 and group % 2 == 0)


def _in_date_column(tag: int, vr: str) -> bool:
    return tag in TIMEZONE or (tag in BASIC and vr in DATE_VRS and tag not in PATIENT_BIRTH_AND_GPS)


def _in_uid_column(tag: int, vr: str) -> bool:
    return tag in BASIC and (vr == "UI" or BASIC[tag] == "X/Z/U*") and tag not in UIDS_NOT_RETAINED


def action(tag: int, vr: str, options: DeidOptions) -> Optional[str]:
    """The action for a public element with this tag and VR, or None when the table does not list it
    (the caller applies its own rules: UIDs are mapped, dates shifted with modified dates, the rest kept)."""
    chosen = []
    if options.retain_device_identity and tag in DEVICE_IDENTITY:
        chosen.append(KEEP)
    if options.retain_institution_identity and tag in INSTITUTION_IDENTITY:
        chosen.append(KEEP)
    if options.retain_patient_characteristics:
        if tag in PATIENT_CHARACTERISTICS_KEEP:
            chosen.append(KEEP)
        elif tag in PATIENT_CHARACTERISTICS_CLEAN:
            chosen.append(CLEAN_TEXT)
    if options.retain_uids and _in_uid_column(tag, vr):
        chosen.append(KEEP)
    if options.temporal and _in_date_column(tag, vr):
        shift = options.temporal == "modified" and vr in ("DA", "DT")
        chosen.append(SHIFT_DATE if shift else KEEP)
    if options.clean_descriptors and tag in DESCRIPTORS:
        chosen.append(CLEAN_TEXT)
    if KEEP in chosen:
        return KEEP
    if chosen:
        return chosen[0]
    code = BASIC.get(tag)
    return _RESOLVED[code] if code else None


def basic_counts() -> Dict[str, int]:
    """How many attributes the Basic Profile column has per action code (for documentation and tests)."""
    counts: Dict[str, int] = {}
    for code in BASIC.values():
        counts[code] = counts.get(code, 0) + 1
    return counts
