"""What a load did, and the summary the user reads at its end: studies loaded with instance counts, files skipped."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional, Set, Tuple

MAX_STUDIES_LISTED = 20


def plural(count: int, singular: str, plural_form: Optional[str] = None) -> str:
    """`1 file`, `2 files`; `1 study`, `3 studies` with the plural form given."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


@dataclass
class LoadReport:
    """The blobs written (with their studies) and the files skipped: listed ones with reasons, and a quiet count."""

    names: Set[str] = field(default_factory=set)
    studies: Counter = field(default_factory=Counter)
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    quiet_skips: int = 0

    def add(self, name: str, study: str) -> None:
        """Record one instance written to blob `name`."""
        self.names.add(name)
        self.studies[study] += 1

    def skip(self, path: str, reason: str, quiet: bool = False) -> None:
        """Record one file not loaded: listed with its reason, or only counted when `quiet`."""
        if quiet:
            self.quiet_skips += 1
        else:
            self.skipped.append((path, reason))

    def summary(self, location: str) -> List[str]:
        """The closing lines: instances and studies loaded into `location`, each study's count, and the skips."""
        total, count = sum(self.studies.values()), len(self.studies)
        lines = [f"Loaded {plural(total, 'instance')} in {plural(count, 'study', 'studies')} into {location}"
                 + (":" if count else ".")]
        listed = list(self.studies.items())[:MAX_STUDIES_LISTED]
        width = max((len(study) for study, _ in listed), default=0)
        lines += [f"  {study:<{width}}  {plural(instances, 'instance')}" for study, instances in listed]
        if count > len(listed):
            lines.append(f"  ... and {plural(count - len(listed), 'more study', 'more studies')}")
        if self.skipped:
            lines.append(f"Skipped {plural(len(self.skipped), 'file')} (each listed above with its reason).")
        if self.quiet_skips:
            lines.append(f"Skipped {plural(self.quiet_skips, 'file')} of pydicom's samples that are not DICOM or "
                         "repeat another sample's UIDs (expected).")
        return lines
