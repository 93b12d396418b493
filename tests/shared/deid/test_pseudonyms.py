"""Keyed pseudonyms: UIDs, patient IDs, day offsets, identifiers, and the EXPORT_DEID_KEY setting."""
import re

import pytest

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.errors import ServiceConfigurationError
from shared.identifiers import DicomIdentifier

KEY = b"0123456789abcdef0123456789abcdef"
UID = "1.2.826.0.1.3680043.8.498.12345678901234567890"


def test_a_uid_maps_to_a_2_25_uid_the_same_for_the_same_key():
    mapped = Pseudonyms(KEY).uid(UID)
    assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", mapped) and len(mapped) <= 44
    assert int(mapped[5:]) < 2 ** 128
    assert Pseudonyms(KEY).uid(UID) == mapped
    assert Pseudonyms(KEY[::-1]).uid(UID) != mapped
    assert Pseudonyms(KEY).uid(UID + "1") != mapped


def test_the_known_value_of_a_uid_does_not_change_between_releases():
    assert Pseudonyms(KEY).uid("1.2.3") == Pseudonyms(KEY).uid("1.2.3")
    import hashlib
    import hmac
    expected = "2.25." + str(int.from_bytes(hmac.new(KEY, b"uid:1.2.3", hashlib.sha256).digest()[:16], "big"))
    assert Pseudonyms(KEY).uid("1.2.3") == expected


def test_patient_ids_are_short_keyed_and_keep_nothing_of_the_original():
    pid = Pseudonyms(KEY).patient_id("PID-12345")
    assert re.fullmatch(r"DEID-[0-9A-F]{32}", pid) and len(pid) <= 64
    assert "12345" not in pid
    assert pid != Pseudonyms(KEY).uid("PID-12345")
    assert Pseudonyms(KEY).patient_id("PID-12346") != pid


def test_day_offsets_are_whole_negative_days_per_patient_and_issuer():
    pseudonyms = Pseudonyms(KEY)
    offsets = {pseudonyms.day_offset(f"P{n}") for n in range(200)}
    assert all(-3650 <= o <= -1 for o in offsets) and len(offsets) > 150
    assert pseudonyms.day_offset("P1") == Pseudonyms(KEY).day_offset("P1", "")
    assert pseudonyms.day_offset("P1", "HOSP-A") != pseudonyms.day_offset("P1", "HOSP-B")


def test_identifiers_map_each_part_like_the_files_or_stay_with_retain_uids():
    pseudonyms = Pseudonyms(KEY)
    identifier = DicomIdentifier("1.2.3", "1.2.3.4", "1.2.3.4.5")
    mapped = pseudonyms.identifier(identifier, DeidOptions())
    assert mapped == DicomIdentifier(pseudonyms.uid("1.2.3"), pseudonyms.uid("1.2.3.4"), pseudonyms.uid("1.2.3.4.5"))
    assert pseudonyms.identifier(DicomIdentifier("1.2.3"), DeidOptions()) == DicomIdentifier(pseudonyms.uid("1.2.3"))
    assert pseudonyms.identifier(identifier, DeidOptions(retain_uids=True)) == identifier


@pytest.mark.parametrize("value,message", [
    (None, "The app setting EXPORT_DEID_KEY is missing or empty; de-identification needs a secret of at least 16 "
           "bytes (for example 32 random bytes, base64-encoded)."),
    ("  ", "The app setting EXPORT_DEID_KEY is missing or empty; de-identification needs a secret of at least 16 "
           "bytes (for example 32 random bytes, base64-encoded)."),
    ("short", "The app setting EXPORT_DEID_KEY is 5 bytes long; de-identification needs a secret of at least 16 "
              "bytes (for example 32 random bytes, base64-encoded)."),
])
def test_a_missing_or_short_setting_names_export_deid_key(value, message):
    with pytest.raises(ServiceConfigurationError) as error:
        Pseudonyms.from_setting(value)
    assert str(error.value) == message


def test_the_setting_is_the_key():
    assert Pseudonyms.from_setting(KEY.decode()).uid(UID) == Pseudonyms(KEY).uid(UID)
