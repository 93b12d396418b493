"""What the export needs from a DICOM store: the DicomStore protocol, its values, and the errors a store raises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, List, Optional, Protocol, Tuple

from shared.errors import ExportFailedError
from shared.identifiers import DicomIdentifier
from shared.study_selection import StudySelection

VANISHED_STATUSES = {404, 410, 412}
NOT_FOUND_MESSAGES = {
    "study": "The specified study cannot be found.",
    "series": "The specified series cannot be found.",
    "instance": "The specified instance cannot be found.",
}


class InstanceUnavailableError(Exception):
    """The instance was listed but can no longer be read (deleted or changed since)."""


class StoreReadError(Exception):
    """Reading an instance's bytes from the store failed part-way; the copy should be retried."""


class StoreUnavailableError(ExportFailedError):
    """The store failed to serve many instances in a row: an outage, not bad instances; the export fails if it lasts."""


class StoreRefusedError(Exception):
    """The store refuses the service's credentials (401/403): the export fails with this message for the caller."""


def unavailable_instance(status: int, reason: str) -> InstanceUnavailableError:
    """The error for an instance the store answered a 4xx for: vanished (404, 410, 412) or otherwise unreadable."""
    if status in VANISHED_STATUSES:
        return InstanceUnavailableError(
            "The instance could not be read from the DICOM store: it was deleted or changed after the export started.")
    detail = f"{status} {reason}".strip()
    return InstanceUnavailableError(f"The instance could not be read from the DICOM store ({detail}).")


@dataclass(frozen=True)
class Shortfall:
    """Instances the store says exist under `identifier` (a study or series) but would not list, and why."""

    identifier: str
    missing: int
    reason: str

    def message(self) -> str:
        """The errors.log line's text."""
        noun = "instance" if self.missing == 1 else "instances"
        return f"{self.missing} {noun} could not be listed: {self.reason}"


@dataclass(frozen=True)
class InstancePage:
    """Some instances matching an identifier, where to go on listing (None when done), and any shortfalls found.

    `sizes` and `md5s`, when given, run parallel to `instances`: the stored size and base64 Content-MD5 of each
    (None where the store does not say).
    """

    instances: List[DicomIdentifier]
    continuation: Optional[str]
    shortfalls: Tuple[Shortfall, ...] = ()
    sizes: Optional[List[Optional[int]]] = None
    md5s: Optional[List[Optional[str]]] = None


class InstanceContent(Protocol):
    """An open instance: its size and base64 MD5 (None when the store does not say) and its bytes as chunks."""

    size: Optional[int]
    md5: Optional[str]

    def chunks(self) -> AsyncIterator[bytes]:
        """The instance's bytes, in order."""


class DicomStore(Protocol):
    """What the export needs from a DICOM store."""

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """A page of at most `limit` instances named by `identifier`, starting at `continuation`."""

    async def list_selected(self, selection: StudySelection, continuation: Optional[str],
                            limit: int) -> InstancePage:
        """A page of at most `limit` instances of the studies `selection` picks, starting at `continuation`."""

    async def open_instance(self, instance: DicomIdentifier) -> InstanceContent:
        """Open an instance for reading; raise InstanceUnavailableError when it is gone."""

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """A short-lived read-only URL a destination account can copy the instance from, or None (stream only)."""
