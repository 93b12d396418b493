"""One export's de-identification as the copy path uses it: the name an instance is exported under, and its bytes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import AsyncIterator, Optional

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import KEY_SETTING, Pseudonyms
from shared.deid.stream import deidentified_chunks
from shared.identifiers import DicomIdentifier


@dataclass(frozen=True)
class Deidentification:
    """The export's options and the deployment's pseudonyms (keyed by EXPORT_DEID_KEY)."""

    options: DeidOptions
    pseudonyms: Pseudonyms

    @classmethod
    def of_export(cls, options: Optional[dict]) -> Optional["Deidentification"]:
        """The de-identification an export's payload asks for (None: export as stored), keyed by the app setting.

        Raises ServiceConfigurationError naming EXPORT_DEID_KEY when it is missing or too short.
        """
        if options is None:
            return None
        return cls(DeidOptions.from_dict(options), _deployment_pseudonyms())

    def exported_as(self, identifier: DicomIdentifier) -> DicomIdentifier:
        """The identifier the de-identified copy carries, in its file, its path, the manifest and errors.log."""
        return self.pseudonyms.identifier(identifier, self.options)

    def chunks(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The de-identified file's bytes from the source file's (NotDeidentifiableError: this instance is refused)."""
        return deidentified_chunks(source, self.options, self.pseudonyms)


def require_key() -> None:
    """Check at the start of a de-identified export that EXPORT_DEID_KEY holds a usable key."""
    _deployment_pseudonyms()


def _deployment_pseudonyms() -> Pseudonyms:
    return Pseudonyms.from_setting(os.environ.get(KEY_SETTING))
