"""Replacement values: a dummy per VR (the profile's D), and dates moved by whole days (modified dates)."""
from __future__ import annotations

import datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

DUMMY_TEXT = "ANONYMOUS"
_DUMMIES = {
    "AE": DUMMY_TEXT, "AS": "000D", "CS": DUMMY_TEXT, "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "DS": "0", "IS": "0", "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "PN": DUMMY_TEXT, "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UT": DUMMY_TEXT, "UR": "urn:anonymous",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0, "AT": 0,
    "OB": b"\0\0", "OW": b"\0\0", "UN": b"\0\0", "OF": b"\0" * 4, "OL": b"\0" * 4, "OD": b"\0" * 8,
    "OV": b"\0" * 8,
}


def dummy(vr: str) -> Any:
    """A short, non-empty value that is valid for the VR and says nothing (SQ: one empty item).

    UI is not handled here: a dummy UID is the mapped UID, which keeps references consistent."""
    if vr == "SQ":
        return Sequence([Dataset()])
    if vr in _DUMMIES:
        return _DUMMIES[vr]
    return 0 if vr.startswith(("US", "SS")) else b"\0\0"     # ambiguous VRs pydicom could not resolve


def shift_date(value: str, days: int) -> str:
    """A DA value (YYYYMMDD) moved by `days`; a value that is not a full date is emptied (it cannot be moved)."""
    text = value.strip()
    try:
        day = datetime.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    if len(text) != 8:
        return ""
    return (day + datetime.timedelta(days=days)).strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str:
    """A DT value with its date part moved by `days`; the time and UTC offset stay. Year-only or year-month
    values, and values that are not dates, are emptied."""
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return ""
    moved = shift_date(text[:8], days)
    return moved + text[8:] if moved else ""
