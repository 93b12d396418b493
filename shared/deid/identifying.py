"""The identifying values of one instance, and the Clean Descriptors test of a text against them.

The test is a best-effort check on text, not language processing: a descriptor is kept only when none of these
values occurs in it (case-insensitive): each component of 2 or more characters of every person name (PN) in the
instance, the patient's IDs, other IDs and names, address, telephone numbers and birth date (as YYYYMMDD,
YYYY-MM-DD, DD.MM.YYYY and DD/MM/YYYY), the accession number, institution, department and station names, and,
unless a temporal option keeps them, every date (DA, and DT's date part) of the instance in the same forms.
"""
from __future__ import annotations

import re
from typing import FrozenSet, Iterable, Iterator

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from shared.deid.options import DeidOptions

IDENTIFYING_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "PatientAddress", "PatientTelephoneNumbers", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "IssuerOfPatientID",
    "MedicalRecordLocator", "PatientInsurancePlanCodeSequence", "MilitaryRank", "BranchOfService",
    "RequestingService", "StudyID", "AdmissionID", "ServiceEpisodeID", "PerformedProcedureStepID",
    "ScheduledProcedureStepID", "RequestedProcedureID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
)
_MIN_LENGTH = 2


def _date_forms(value: str) -> Iterator[str]:
    text = value.strip()[:8]
    if len(text) == 8 and text.isdigit():
        y, m, d = text[:4], text[4:6], text[6:]
        yield from (text, f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{d}/{m}/{y}", f"{m}/{d}/{y}")


def _values(value) -> Iterable[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def identifying_values(dataset: Dataset, options: DeidOptions) -> FrozenSet[str]:
    """The lower-cased identifying strings of `dataset` (all its sequences included), before any change."""
    found: set = set()
    _collect(dataset, options.temporal is None, found)
    return frozenset(value.lower() for value in found)


def _collect(dataset: Dataset, with_dates: bool, found: set) -> None:
    """Converts only the public elements that can hold identifying values (private ones are removed anyway)."""
    for tag in dataset.keys():
        if tag.is_private or tag.element == 0:
            continue
        vr = dataset.get_item(tag).VR
        if vr in (None, "UN"):                       # implicit VR, or written as UN: the dictionary's VR
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                continue
        keyword = keyword_for_tag(tag)
        if vr == "SQ":
            for item in dataset[tag].value or []:
                _collect(item, with_dates, found)
        elif vr == "PN":
            for name in _values(dataset[tag].value):
                found.update(part for part in re.split(r"[\^=\s,]+", name) if len(part) >= _MIN_LENGTH)
        elif keyword in IDENTIFYING_KEYWORDS:
            found.update(v.strip() for v in _values(dataset[tag].value) if len(v.strip()) >= _MIN_LENGTH)
        elif keyword == "PatientBirthDate" or (with_dates and vr in ("DA", "DT")):
            for value in _values(dataset[tag].value):
                found.update(_date_forms(value))


def is_clean(text: str, identifying: FrozenSet[str]) -> bool:
    """Whether `text` contains none of the identifying values (case-insensitive substring test)."""
    lowered = text.lower()
    return not any(value in lowered for value in identifying)
