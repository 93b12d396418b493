"""What the export needs from a DICOM store: the DicomStore protocol, its values, and the errors a store raises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, List, Optional, Protocol

from shared.identifiers import DicomIdentifier

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
class InstancePage:
    """Some instances matching an identifier, and where to go on listing (None when done)."""

    instances: List[DicomIdentifier]
    continuation: Optional[str]


class InstanceContent(Protocol):
    """An open instance: its size (None when the store does not say) and its bytes as a stream of chunks."""

    size: Optional[int]

    def chunks(self) -> AsyncIterator[bytes]:
        """The instance's bytes, in order."""


class DicomStore(Protocol):
    """What the export needs from a DICOM store."""

    async def list_instances(self, identifier: DicomIdentifier, continuation: Optional[str],
                             limit: int) -> InstancePage:
        """A page of at most `limit` instances named by `identifier`, starting at `continuation`."""

    async def open_instance(self, instance: DicomIdentifier) -> InstanceContent:
        """Open an instance for reading; raise InstanceUnavailableError when it is gone."""

    async def source_url(self, instance: DicomIdentifier) -> Optional[str]:
        """A short-lived read-only URL a destination account can copy the instance from, or None (stream only)."""
