"""The request's `deidentify` object: which PS3.15 Annex E options apply, parsed, stored and named as codes."""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Optional, Tuple

from pydicom.sr.codedict import codes

from shared.errors import InvalidRequestError, quote_value
from shared.request_fields import RequestObject, the_field

TEMPORAL_VALUES = ("full", "modified")
_TEMPORAL_NAME = "retainLongitudinalTemporalInformation"
# request name -> dataclass field, for the boolean options (in the order the message lists them)
_FLAGS = {
    "retainPatientCharacteristics": "retain_patient_characteristics",
    "retainDeviceIdentity": "retain_device_identity",
    "retainInstitutionIdentity": "retain_institution_identity",
    "retainUids": "retain_uids",
    "retainSafePrivate": "retain_safe_private",
    "cleanDescriptors": "clean_descriptors",
    "allowBurnedInAnnotation": "allow_burned_in_annotation",
}
OPTION_NAMES = (_TEMPORAL_NAME, *_FLAGS)
# field -> CID 7050 code (pydicom's codes.DCM), in the order the codes are listed after 113100
_CODES = (
    ("clean_descriptors", codes.DCM.CleanDescriptorsOption),
    ("temporal:full", codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption),
    ("temporal:modified", codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption),
    ("retain_patient_characteristics", codes.DCM.RetainPatientCharacteristicsOption),
    ("retain_device_identity", codes.DCM.RetainDeviceIdentityOption),
    ("retain_uids", codes.DCM.RetainUidsOption),
    ("retain_safe_private", codes.DCM.RetainSafePrivateOption),
    ("retain_institution_identity", codes.DCM.RetainInstitutionIdentityOption),
)


@dataclass(frozen=True)
class DeidOptions:
    """The options of one export's de-identification; all off means the Basic Profile alone."""

    temporal: Optional[str] = None          # None | "full" | "modified"
    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_uids: bool = False
    retain_safe_private: bool = False
    clean_descriptors: bool = False
    allow_burned_in_annotation: bool = False

    @classmethod
    def parse(cls, value: Any, path: str = "deidentify") -> "DeidOptions":
        """Read the request's JSON value (an object; names case-insensitive); raise InvalidRequestError naming the
        field at fault."""
        listed = ", ".join(f"'{name}'" for name in OPTION_NAMES)
        if not isinstance(value, dict):
            raise InvalidRequestError(f"{the_field(path)} must be an object of de-identification options ({{}} for "
                                      f"the Basic Profile alone), not {quote_value(value)}.")
        given = RequestObject(value)
        known = {name.lower(): name for name in OPTION_NAMES}
        for spelt in value:
            if str(spelt).lower() not in known:
                close = _closest(str(spelt))
                hint = f" (did you mean '{close}'?)" if close else ""
                raise InvalidRequestError(f"{the_field(f'{path}.{spelt}')} is not a de-identification option{hint}; "
                                          f"the options are {listed}.")
        spelling = {str(name).lower(): str(name) for name in value}
        settings: Dict[str, Any] = {}
        for name, field in _FLAGS.items():
            if name.lower() in given:
                flag = given[name]
                if not isinstance(flag, bool):
                    raise InvalidRequestError(f"{the_field(f'{path}.{spelling[name.lower()]}')} must be true or "
                                              f"false, not {quote_value(flag)}.")
                settings[field] = flag
        if _TEMPORAL_NAME.lower() in given:
            temporal = given[_TEMPORAL_NAME]
            if temporal is not None:
                if not isinstance(temporal, str) or temporal.lower() not in TEMPORAL_VALUES:
                    raise InvalidRequestError(
                        f"{the_field(f'{path}.{spelling[_TEMPORAL_NAME.lower()]}')} must be \"full\" or "
                        f"\"modified\", not {quote_value(temporal)}.")
                settings["temporal"] = temporal.lower()
        return cls(**settings)

    def to_dict(self) -> dict:
        """The options that differ from the defaults, for durable payloads (`{}` for the Basic Profile alone)."""
        defaults = DeidOptions()
        return {k: v for k, v in asdict(self).items() if v != getattr(defaults, k)}

    @classmethod
    def from_dict(cls, value: dict) -> "DeidOptions":
        """The inverse of to_dict."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})

    def method_codes(self) -> List[Tuple[str, str]]:
        """(code value, code meaning) of CID 7050: 113100 first, then one per option applied."""
        chosen = [codes.DCM.BasicApplicationConfidentialityProfile]
        for key, code in _CODES:
            on = self.temporal == key.split(":")[1] if key.startswith("temporal:") else getattr(self, key)
            if on:
                chosen.append(code)
        return [(code.value, code.meaning) for code in chosen]


def _closest(spelt: str) -> Optional[str]:
    """The option whose name looks like the caller's unknown name, if one does."""
    lowered = {name.lower(): name for name in OPTION_NAMES}
    close = difflib.get_close_matches(spelt.lower(), list(lowered), n=1, cutoff=0.8)
    return lowered[close[0]] if close else None
