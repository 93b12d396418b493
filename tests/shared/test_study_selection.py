"""Study selections and partition names: what they accept, normalise and store."""
import pytest

from shared.errors import InvalidRequestError
from shared.identifiers import DicomIdentifier
from shared.partitions import DEFAULT_PARTITION, parse_partition
from shared.study_selection import StudySelection, parse_export_entry, parse_filters


def test_filters_are_normalised_sorted_and_round_trip_through_the_stored_entry():
    selection = parse_filters({"modalitiesinstudy": ["ct", " mr "], "StudyDate": " 20240101- ", "PatientID": "P*"})
    assert selection == StudySelection((("ModalitiesInStudy", "CT,MR"), ("PatientID", "P*"),
                                        ("StudyDate", "20240101-")))
    assert (selection.kind, selection.level) == ("query", "selection")
    assert parse_export_entry(selection.to_text()) == selection
    assert parse_export_entry(StudySelection().to_text()).kind == "everything"
    assert parse_export_entry("1.2/3.4") == DicomIdentifier("1.2", "3.4")


@pytest.mark.parametrize("value", ["20240101", "-20240101", "20240101-", "20240101-20240101", "20000229"])
def test_dates_and_open_or_closed_ranges_are_accepted(value):
    assert parse_filters({"StudyDate": value}).filters == (("StudyDate", value),)


@pytest.mark.parametrize("name,expected", [("research", "research"), ("A.b-C_9", "A.b-C_9"), ("x" * 64, "x" * 64),
                                           ("MICROSOFT.DEFAULT", DEFAULT_PARTITION)])
def test_partition_names_follow_azures_rule(name, expected):
    assert parse_partition(name) == expected


@pytest.mark.parametrize("name", ["", "x" * 65, "a b", "a/b", "a:b", "p\u00e4"])
def test_malformed_partition_names_are_refused(name):
    with pytest.raises(InvalidRequestError):
        parse_partition(name)
