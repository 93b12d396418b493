"""DICOM identifiers (`study[/series[/sop]]`): parsing, validation, normalisation and de-duplication."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional

from shared.errors import InvalidRequestError

MAX_UID_LENGTH = 64
_UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_PART_NAMES = ("study instance UID", "series instance UID", "SOP instance UID")
IDENTIFIER_FORMAT = "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'"


@dataclass(frozen=True)
class DicomIdentifier:
    """A study, a series or a single instance named by its UIDs."""

    study: str
    series: Optional[str] = None
    sop: Optional[str] = None

    @property
    def level(self) -> str:
        """The identifier's level: `study`, `series` or `instance`."""
        if self.sop is not None:
            return "instance"
        return "series" if self.series is not None else "study"

    @property
    def parts(self) -> tuple:
        """The UIDs this identifier names, outermost first."""
        return tuple(p for p in (self.study, self.series, self.sop) if p is not None)

    def __str__(self) -> str:
        return "/".join(self.parts)


def uid_problem(uid: str) -> Optional[str]:
    """Describe why `uid` is not a valid DICOM UID, or return None when it is."""
    if uid == "":
        return "it is empty"
    if len(uid) > MAX_UID_LENGTH:
        return f"it is {len(uid)} characters long (at most {MAX_UID_LENGTH} are allowed)"
    if not _UID_PATTERN.match(uid):
        return "a UID is made of digits separated by single dots, with no other characters"
    return None


def parse_identifier(text: str) -> DicomIdentifier:
    """Parse `study[/series[/sop]]`, trimming spaces around each part; raise InvalidRequestError when malformed."""
    parts = [p.strip() for p in text.split("/")]
    if len(parts) > 3:
        raise InvalidRequestError(
            f"The identifier '{text}' has {len(parts)} parts; the format is {IDENTIFIER_FORMAT}.")
    for name, part in zip(_PART_NAMES, parts):
        problem = uid_problem(part)
        if problem:
            raise InvalidRequestError(
                f"The identifier '{text}' is not valid: its {name} '{part}' is not a valid UID because {problem}. "
                f"The format is {IDENTIFIER_FORMAT}.")
    return DicomIdentifier(*parts)


def normalize_identifiers(identifiers: Iterable[DicomIdentifier]) -> List[DicomIdentifier]:
    """Drop repeats and identifiers contained in another one, keeping the first-seen order of the rest."""
    unique = list(dict.fromkeys(identifiers))
    present = set(unique)
    kept = []
    for identifier in unique:
        ancestors = (DicomIdentifier(*identifier.parts[:n]) for n in range(1, len(identifier.parts)))
        if not any(a in present for a in ancestors):
            kept.append(identifier)
    return kept
