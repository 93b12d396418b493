"""Request objects: names are read case-insensitively, and a missing field points at a misspelt property."""
from shared.request_fields import RequestObject, the_field

KNOWN = ("blobContainerUri", "connectionString", "blobContainerName", "useManagedIdentity")


def test_names_are_read_whatever_their_case():
    fields = RequestObject({"BlobContainerName": "c1", "CONNECTIONSTRING": "x"})
    assert (fields["blobcontainername"], fields.get("connectionString"), fields.get("blobContainerUri")) == ("c1", "x",
                                                                                                            None)
    assert (sorted(fields), len(fields)) == (["blobcontainername", "connectionstring"], 2)


def test_a_missing_field_names_the_property_that_looks_like_it():
    fields = RequestObject({"connectionString": "x", "blobContainerNmae": "c1"})
    assert fields.missing("destination.settings.blobContainerName", KNOWN) == (
        "The field 'destination.settings.blobContainerName' is missing (did you mean it for 'blobContainerNmae'?)")


def test_a_known_or_unrelated_property_gives_no_hint():
    fields = RequestObject({"connectionString": "x", "comment": "c1", "container": "c1"})
    assert fields.missing("destination.settings.blobContainerName", KNOWN) == (
        "The field 'destination.settings.blobContainerName' is missing")
    assert RequestObject({"ConnectionString": "x"}).misspelling_of("connectionString", KNOWN) is None


def test_the_closest_of_several_candidates_is_named():
    fields = RequestObject({"sourc": {}, "sources": {}, "destination": {}})
    assert fields.misspelling_of("source", ("source", "destination")) == "sources"  # 12/13 alike beats 10/11
    assert the_field("source") == "The field 'source'"
