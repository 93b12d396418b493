"""The `deidentify` object of a request: parsing, messages, storage and the CID 7050 codes."""
import pytest

from shared.deid.options import DeidOptions
from shared.errors import InvalidRequestError

OPTIONS_LIST = ("the options are 'retainLongitudinalTemporalInformation', 'retainPatientCharacteristics', "
                "'retainDeviceIdentity', 'retainInstitutionIdentity', 'retainUids', 'retainSafePrivate', "
                "'cleanDescriptors', 'allowBurnedInAnnotation'.")


def test_an_empty_object_is_the_basic_profile_alone():
    options = DeidOptions.parse({})
    assert options == DeidOptions()
    assert options.to_dict() == {}
    assert options.method_codes() == [("113100", "Basic Application Confidentiality Profile")]


def test_every_option_is_read_case_insensitively():
    options = DeidOptions.parse({
        "RETAINLONGITUDINALTEMPORALINFORMATION": "Modified", "retainpatientcharacteristics": True,
        "RetainDeviceIdentity": True, "retainInstitutionIdentity": True, "retainUIDs": True,
        "retainSafePrivate": True, "cleandescriptors": True, "allowBurnedInAnnotation": True})
    assert options == DeidOptions("modified", True, True, True, True, True, True, True)


def test_false_and_absent_are_the_same():
    assert DeidOptions.parse({"retainUids": False, "cleanDescriptors": False}) == DeidOptions()


@pytest.mark.parametrize("value,message", [
    ({"retainUID": True}, "The field 'deidentify.retainUID' is not a de-identification option (did you mean "
                          "'retainUids'?); " + OPTIONS_LIST),
    ({"cleanDescriptor": True}, "The field 'deidentify.cleanDescriptor' is not a de-identification option (did you "
                                "mean 'cleanDescriptors'?); " + OPTIONS_LIST),
    ({"dates": "full"}, "The field 'deidentify.dates' is not a de-identification option; " + OPTIONS_LIST),
    ({"retainUids": "yes"}, "The field 'deidentify.retainUids' must be true or false, not \"yes\"."),
    ({"RETAINUIDS": 1}, "The field 'deidentify.RETAINUIDS' must be true or false, not 1."),
    ({"allowBurnedInAnnotation": None}, "The field 'deidentify.allowBurnedInAnnotation' must be true or false, "
                                        "not null."),
    ({"retainLongitudinalTemporalInformation": "shifted"},
     "The field 'deidentify.retainLongitudinalTemporalInformation' must be \"full\" or \"modified\", not "
     "\"shifted\"."),
    ({"retainLongitudinalTemporalInformation": True},
     "The field 'deidentify.retainLongitudinalTemporalInformation' must be \"full\" or \"modified\", not true."),
    ([], "The field 'deidentify' must be an object of de-identification options ({} for the Basic Profile alone), "
         "not a list."),
    (True, "The field 'deidentify' must be an object of de-identification options ({} for the Basic Profile "
           "alone), not true."),
])
def test_a_wrong_option_is_named_in_the_message(value, message):
    with pytest.raises(InvalidRequestError) as error:
        DeidOptions.parse(value)
    assert str(error.value) == message


def test_the_path_prefixes_the_field():
    with pytest.raises(InvalidRequestError) as error:
        DeidOptions.parse({"retainUids": "no"}, path="options.deidentify")
    assert str(error.value) == "The field 'options.deidentify.retainUids' must be true or false, not \"no\"."


def test_to_dict_is_compact_and_from_dict_inverts_it():
    options = DeidOptions(temporal="full", retain_uids=True, allow_burned_in_annotation=True)
    assert options.to_dict() == {"temporal": "full", "retain_uids": True, "allow_burned_in_annotation": True}
    assert DeidOptions.from_dict(options.to_dict()) == options
    assert DeidOptions.from_dict({}) == DeidOptions()


def test_method_codes_list_113100_then_each_option_applied():
    options = DeidOptions(temporal="modified", retain_patient_characteristics=True, retain_device_identity=True,
                          retain_institution_identity=True, retain_uids=True, retain_safe_private=True,
                          clean_descriptors=True, allow_burned_in_annotation=True)
    assert options.method_codes() == [
        ("113100", "Basic Application Confidentiality Profile"),
        ("113105", "Clean Descriptors Option"),
        ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
        ("113108", "Retain Patient Characteristics Option"),
        ("113109", "Retain Device Identity Option"),
        ("113110", "Retain UIDs Option"),
        ("113111", "Retain Safe Private Option"),
        ("113112", "Retain Institution Identity Option"),
    ]
    assert [c for c, _ in DeidOptions(temporal="full").method_codes()] == ["113100", "113106"]
