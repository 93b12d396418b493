"""Keyed, deterministic replacements (UIDs, patient IDs, date offsets) from the app setting EXPORT_DEID_KEY."""
from __future__ import annotations

import hashlib
import hmac
from typing import Optional

from pydicom.uid import UID_dictionary

from shared.deid.options import DeidOptions
from shared.errors import ServiceConfigurationError
from shared.identifiers import DicomIdentifier

KEY_SETTING = "EXPORT_DEID_KEY"
MIN_KEY_BYTES = 16
MAX_DAY_SHIFT = 3650


class Pseudonyms:
    """HMAC-SHA256 under one key: the same input maps to the same output for every instance, worker and export."""

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    @classmethod
    def from_setting(cls, value: Optional[str]) -> "Pseudonyms":
        """From the setting's text (used as UTF-8 bytes); missing, empty or shorter than 16 bytes is an error."""
        key = (value or "").strip().encode("utf-8")
        if not key:
            raise ServiceConfigurationError(
                f"The app setting {KEY_SETTING} is missing or empty; de-identification needs a secret of at least "
                f"{MIN_KEY_BYTES} bytes (for example 32 random bytes, base64-encoded).")
        if len(key) < MIN_KEY_BYTES:
            raise ServiceConfigurationError(
                f"The app setting {KEY_SETTING} is {len(key)} bytes long; de-identification needs a secret of at "
                f"least {MIN_KEY_BYTES} bytes (for example 32 random bytes, base64-encoded).")
        return cls(key)

    def _digest(self, domain: bytes, value: str) -> bytes:
        return hmac.new(self._key, domain + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """`2.25.<128-bit integer>` from the original UID (at most 44 characters)."""
        return "2.25." + str(int.from_bytes(self._digest(b"uid:", original)[:16], "big"))

    def patient_id(self, original: str) -> str:
        """A replacement Patient ID (`DEID-` and 32 hex digits), keeping nothing of the original."""
        return "DEID-" + self._digest(b"patient-id:", original)[:16].hex().upper()

    def day_offset(self, patient_id: str, issuer: str = "") -> int:
        """The patient's date shift in whole days: from -1 to -3650, the same for all of the patient's instances."""
        digest = self._digest(b"date:", patient_id + "\\" + issuer)
        return -(1 + int.from_bytes(digest[:8], "big") % MAX_DAY_SHIFT)

    def identifier(self, identifier: DicomIdentifier, options: DeidOptions) -> DicomIdentifier:
        """The identifier of the de-identified copy: each UID mapped as in the files (unchanged with retain_uids)."""
        if options.retain_uids:
            return identifier
        return DicomIdentifier(*(self.map_uid(part) for part in identifier.parts))

    def map_uid(self, original: str) -> str:
        """uid(), except for UIDs the standard defines (pydicom's UID dictionary), which stay as they are."""
        return original if original in UID_dictionary else self.uid(original)
