"""Which studies a selection exports: every study of the partition, or those matching QIDO-RS study-level filters."""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Tuple, Union

from shared.errors import InvalidRequestError, quote_value
from shared.identifiers import DicomIdentifier, parse_identifier
from shared.request_fields import the_field

FILTERS_FIELD = "source.settings.filters"
# keyword → the longest value its DICOM value representation holds (DA ranges, CS codes, SH, LO, PN)
TEXT_FILTERS = {"AccessionNumber": 16, "PatientID": 64, "PatientName": 64, "StudyDescription": 64, "StudyID": 16}
FILTER_KEYWORDS = ("StudyDate", "ModalitiesInStudy", *TEXT_FILTERS)
_DATE_RANGE = re.compile(r"^([0-9]{8})?(-)?([0-9]{8})?$")
_MODALITY = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_FORBIDDEN_TEXT = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class StudySelection:
    """Every study of the partition (no filters), or the studies matching QIDO-RS study-level `filters`.

    It is kept with the export's working files, never in a durable payload or a log: filter values may be patient data.
    """

    filters: Tuple[Tuple[str, str], ...] = ()
    level = "selection"

    @property
    def kind(self) -> str:
        """`everything` or `query`, as the API and the logs name the source."""
        return "query" if self.filters else "everything"

    def to_text(self) -> str:
        """The selection as stored among the export's entries (a JSON object, so never mistaken for a UID)."""
        return json.dumps({"filters": dict(self.filters)}, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> "StudySelection":
        """Read `to_text()` back."""
        return cls(tuple(json.loads(text)["filters"].items()))


def parse_export_entry(text: str) -> Union[DicomIdentifier, StudySelection]:
    """One stored entry of what an export takes: an identifier `study[/series[/sop]]`, or a study selection."""
    return StudySelection.from_text(text) if text.startswith("{") else parse_identifier(text)


def _date_problem(text: str) -> str:
    found = _DATE_RANGE.match(text)
    if not found or not (found.group(1) or found.group(3)) or (found.group(3) and not found.group(2)):
        return "which is not a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may be left open)"
    for day in filter(None, (found.group(1), found.group(3))):
        try:
            datetime.strptime(day, "%Y%m%d")
        except ValueError:
            return f"where {day} is not a calendar date"
    if found.group(1) and found.group(3) and found.group(1) > found.group(3):
        return "whose range ends before it starts"
    return ""


def _filter_value(keyword: str, value: Any, field: str) -> str:
    if keyword == "ModalitiesInStudy" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        wanted = "a string or a list of strings" if keyword == "ModalitiesInStudy" else "a string"
        raise InvalidRequestError(f"{field} must be {wanted}, not {quote_value(value)}.")
    text = value.strip()
    if not text:
        raise InvalidRequestError(f"{field} is empty: give a value to match, or leave the filter out.")
    if keyword == "StudyDate":
        problem = _date_problem(text)
    elif keyword == "ModalitiesInStudy":
        text = ",".join(code.strip().upper() for code in text.split(","))
        bad = any(not _MODALITY.match(code) for code in text.split(","))
        problem = "which is not a comma-separated list of modality codes such as CT,MR" if bad else ""
    elif len(text) > TEXT_FILTERS[keyword]:
        problem = f"which is longer than the {TEXT_FILTERS[keyword]} characters a {keyword} holds"
    else:
        problem = "which holds a backslash or a control character" if _FORBIDDEN_TEXT.search(text) else ""
    if problem:
        raise InvalidRequestError(f"{field} is {quote_value(value)}, {problem}.")
    return text


def parse_filters(filters: Any) -> StudySelection:
    """Validate `source.settings.filters` (keywords case-insensitive) into a selection; InvalidRequestError naming
    the key and the value at fault."""
    if not isinstance(filters, dict):
        raise InvalidRequestError(
            f"{the_field(FILTERS_FIELD)} must be an object of QIDO-RS study-level keywords and values, "
            f"not {quote_value(filters)}.")
    if not filters:
        raise InvalidRequestError(f"{the_field(FILTERS_FIELD)} is empty: give at least one of "
                                  f"{', '.join(FILTER_KEYWORDS)}, or leave out 'source' to export everything.")
    known: Dict[str, str] = {keyword.lower(): keyword for keyword in FILTER_KEYWORDS}
    chosen: Dict[str, str] = {}
    for name, value in filters.items():
        field = the_field(f"{FILTERS_FIELD}.{name}")
        keyword = known.get(str(name).lower())
        if keyword is None:
            close = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.8)
            hint = f" (did you mean '{known[close[0]]}'?)" if close else ""
            raise InvalidRequestError(
                f"{field} (value {quote_value(value)}) is not a supported filter{hint}: filter by the QIDO-RS "
                f"study-level keywords {', '.join(FILTER_KEYWORDS)}.")
        if keyword in chosen:
            raise InvalidRequestError(f"{field} repeats the filter '{keyword}': give each keyword once.")
        chosen[keyword] = _filter_value(keyword, value, field)
    return StudySelection(tuple(sorted(chosen.items())))
