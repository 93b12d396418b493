"""Identifier parsing and normalisation."""
import pytest

from shared.errors import InvalidRequestError
from shared.identifiers import normalize_identifiers, parse_identifier


@pytest.mark.parametrize("text,parts,level", [
    ("1.2.3", ("1.2.3",), "study"),
    ("1.2.3/4.5", ("1.2.3", "4.5"), "series"),
    (" 1.2.3 / 4.5 / 6.7 ", ("1.2.3", "4.5", "6.7"), "instance"),
    ("0", ("0",), "study"),
    ("007/12.003.456", ("007", "12.003.456"), "series"),
    ("1." + "2" * 62, ("1." + "2" * 62,), "study"),
])
def test_valid_identifiers_parse_to_their_parts(text, parts, level):
    identifier = parse_identifier(text)
    assert (identifier.parts, identifier.level, str(identifier)) == (parts, level, "/".join(parts))


@pytest.mark.parametrize("text,fragment", [
    ("", "study instance UID '' is not a valid UID because it is empty"),
    ("1.2/", "series instance UID '' is not a valid UID because it is empty"),
    ("1/2/3/4", "has 4 parts"),
    (".1", "digits separated by single dots"),
    ("1.", "digits separated by single dots"),
    ("1..2", "digits separated by single dots"),
    ("1.2-3", "digits separated by single dots"),
    ("１.２", "digits separated by single dots"),
    ("1." + "2" * 63, "it is 65 characters long (at most 64 are allowed)"),
])
def test_malformed_identifiers_are_rejected_with_a_reason(text, fragment):
    with pytest.raises(InvalidRequestError) as error:
        parse_identifier(text)
    assert fragment in str(error.value)


def test_normalisation_drops_repeats_and_contained_identifiers_in_first_seen_order():
    ids = [parse_identifier(t) for t in ["1/2/3", "9", "1", "9", "1/2", "5/6/7", "5/6", "5/6/8"]]
    assert [str(i) for i in normalize_identifiers(ids)] == ["9", "1", "5/6"]


def test_containment_is_by_whole_uids():
    ids = [parse_identifier(t) for t in ["1.2", "1.23/3", "1.2/3"]]
    assert [str(i) for i in normalize_identifiers(ids)] == ["1.2", "1.23/3"]
