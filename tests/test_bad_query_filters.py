"""Bad query filters: each answers 400 with one exact message naming the key and the value, and starts nothing."""
import pytest

from tests.test_bad_requests import answers_400

F = "The field 'source.settings.filters"
KEYWORDS = "StudyDate, ModalitiesInStudy, AccessionNumber, PatientID, PatientName, StudyDescription, StudyID"


def query(filters):
    """A body whose source is a query with `filters` (the destination is never reached)."""
    return {"source": {"type": "query", "settings": {"filters": filters}},
            "destination": {"type": "azureBlob", "settings": {"blobContainerUri": "https://acct.blob.core.windows.net/c1"}}}


BAD_FILTERS = [
    ("unknown keyword", query({"Modality": "CT"}),
     f"{F}.Modality' (value \"CT\") is not a supported filter: filter by the QIDO-RS study-level keywords {KEYWORDS}."),
    ("misspelt keyword", query({"StudyDat": "20240101"}),
     f"{F}.StudyDat' (value \"20240101\") is not a supported filter (did you mean 'StudyDate'?): filter by the QIDO-RS "
     f"study-level keywords {KEYWORDS}."),
    ("date with dashes", query({"StudyDate": "2024-01-01"}),
     f"{F}.StudyDate' is \"2024-01-01\", which is not a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may "
     "be left open)."),
    ("not a calendar date", query({"StudyDate": "20240230"}),
     f"{F}.StudyDate' is \"20240230\", where 20240230 is not a calendar date."),
    ("range backwards", query({"StudyDate": "20240201-20240101"}),
     f"{F}.StudyDate' is \"20240201-20240101\", whose range ends before it starts."),
    ("date as a number", query({"StudyDate": 20240101}), f"{F}.StudyDate' must be a string, not 20240101."),
    ("modality code too long", query({"ModalitiesInStudy": "CT,ULTRASOUNDIMAGING"}),
     f"{F}.ModalitiesInStudy' is \"CT,ULTRASOUNDIMAGING\", which is not a comma-separated list of modality codes "
     "such as CT,MR."),
    ("modalities as an object", query({"ModalitiesInStudy": {"CT": True}}),
     f"{F}.ModalitiesInStudy' must be a string or a list of strings, not an object."),
    ("patient id too long", query({"PatientID": "P" * 65}),
     f"{F}.PatientID' is \"{'P' * 56}..., which is longer than the 64 characters a PatientID holds."),
    ("backslash", query({"StudyDescription": "CT\\MR"}),
     f"{F}.StudyDescription' is \"CT\\\\MR\", which holds a backslash or a control character."),
    ("empty value", query({"AccessionNumber": " "}),
     f"{F}.AccessionNumber' is empty: give a value to match, or leave the filter out."),
    ("repeated keyword", query({"PatientID": "a", "patientid": "b"}),
     f"{F}.patientid' repeats the filter 'PatientID': give each keyword once."),
    ("no filters", query({}),
     f"{F}' is empty: give at least one of {KEYWORDS}, or leave out 'source' to export everything."),
    ("filters not an object", query(["StudyDate"]),
     f"{F}' must be an object of QIDO-RS study-level keywords and values, not a list."),
    ("filters missing", {"source": {"type": "query", "settings": {"filter": {}}}, "destination": {}},
     f"{F}' is missing (did you mean it for 'filter'?): give {{\"type\": \"query\", \"settings\": "
     "{\"filters\": {...}}}."),
    ("query settings missing", {"source": {"type": "Query"}, "destination": {}},
     "The field 'source.settings' is missing: give {\"type\": \"query\", \"settings\": {\"filters\": {...}}}."),
]


@pytest.mark.parametrize("body,message", [case[1:] for case in BAD_FILTERS], ids=[case[0] for case in BAD_FILTERS])
def test_a_bad_filter_is_400_naming_the_key_and_value(loop, host, body, message, monkeypatch):
    answers_400(loop, host, body, message, monkeypatch)
