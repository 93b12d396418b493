"""The small values the export's activities take and return: resolution requests, batches, copy requests, outcomes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from shared.identifiers import DicomIdentifier
from shared.partitions import DEFAULT_PARTITION
from shared.payload import Payload
from shared.settings import DEFAULT_BATCH_MAX_BYTES

UNKNOWN_SIZES_PER_BATCH = 100  # docs/design.md, "One copy activity within the function timeout"


@dataclass(frozen=True)
class Progress(Payload):
    """How many instances were exported and how many identifiers or instances were skipped."""

    exported: int = 0
    skipped: int = 0

    def __add__(self, other: "Progress") -> "Progress":
        return Progress(self.exported + other.exported, self.skipped + other.skipped)


@dataclass(frozen=True)
class Batching(Payload):
    """Instances and bytes per copy activity, copy activities per wave, and copies in flight inside one activity."""

    batch_size: int
    batches_in_flight: int
    copies_per_batch: int
    max_bytes: int = DEFAULT_BATCH_MAX_BYTES

    @property
    def unknown_size(self) -> int:
        """What an instance of unknown size counts against `max_bytes`: an even share of a batch of at most
        UNKNOWN_SIZES_PER_BATCH (so 21 MiB of the default 2 GiB), so a batch of such instances alone is cut at
        min(batch_size, 100) whatever their real size; instances of listed size may fill the rest of `batch_size`."""
        return max(1, self.max_bytes // min(self.batch_size, UNKNOWN_SIZES_PER_BATCH))


@dataclass(frozen=True)
class SourceInstance:
    """One instance to copy: its identifier, whether the caller named it, and its stored size and MD5 if listed."""

    identifier: DicomIdentifier
    named: bool = False
    size: Optional[int] = None
    md5: Optional[str] = None


@dataclass(frozen=True)
class SeriesGroup(Payload):
    """SOP instance UIDs of one series, grouped so a batch repeats no study or series UID.

    `named` says the caller named these instances directly, so none was seen in the store before copying;
    `sizes` and `md5s` (base64 Content-MD5) run parallel to `sops`, None where the listing did not say.
    """

    study: str
    series: str
    sops: Tuple[str, ...]
    named: bool = False
    sizes: Tuple[Optional[int], ...] = ()
    md5s: Tuple[Optional[str], ...] = ()


@dataclass(frozen=True)
class InstanceBatch(Payload):
    """The instances one copy activity exports."""

    groups: Tuple[SeriesGroup, ...]

    @classmethod
    def of(cls, instances: Sequence[SourceInstance]) -> "InstanceBatch":
        """Group instances by series and by whether they were named, keeping their order."""
        groups: list = []
        for item in instances:
            key = (item.identifier.study, item.identifier.series, item.named)
            if not groups or groups[-1][0] != key:
                groups.append((key, []))
            groups[-1][1].append(item)
        return cls(tuple(SeriesGroup(study, series, tuple(i.identifier.sop for i in items), named,
                                     tuple(i.size for i in items), tuple(i.md5 for i in items))
                         for (study, series, named), items in groups))

    def instances(self) -> Iterator[SourceInstance]:
        """Every instance in the batch, in order."""
        for group in self.groups:
            sizes = group.sizes or (None,) * len(group.sops)
            md5s = group.md5s or (None,) * len(group.sops)
            for sop, size, md5 in zip(group.sops, sizes, md5s):
                yield SourceInstance(DicomIdentifier(group.study, group.series, sop), group.named, size, md5)

    def __len__(self) -> int:
        return sum(len(g.sops) for g in self.groups)


@dataclass(frozen=True)
class ListingCursor(Payload):
    """Where listing the first unfinished identifier stands, and whether it has matched an instance yet."""

    token: str
    found: bool


@dataclass(frozen=True)
class ResolveRequest(Payload):
    """Input of `resolve_batches`: where resolution stands and how to batch what it finds."""

    operation_id: str
    position: int
    continuation: Optional[ListingCursor]
    identifier_count: int
    first_batch: int
    batching: Batching
    partition: str = DEFAULT_PARTITION
    deidentify: Optional[Dict[str, Any]] = None


@dataclass(frozen=True)
class ResolvedBatches(Payload):
    """Output of `resolve_batches`: how many batches and instances it stored, and how far resolution got."""

    batches: int
    instances: int
    position: int
    continuation: Optional[ListingCursor]
    skipped: int
    refusal: Optional[str] = None


@dataclass(frozen=True)
class CopyRequest(Payload):
    """Input of `copy_batch`: which stored batch to copy, how many copies at once, and how."""

    operation_id: str
    batch_index: int
    copies_in_flight: int
    copy_mode: str
    partition: str = DEFAULT_PARTITION
    deidentify: Optional[Dict[str, Any]] = None


@dataclass(frozen=True)
class BatchOutcome(Payload):
    """Output of `copy_batch`: counts, the copy mode it settled on, and the message that fails the export, if any."""

    exported: int = 0
    skipped: int = 0
    copy_mode: str = "auto"
    refusal: Optional[str] = None

    @property
    def progress(self) -> Progress:
        """The counts alone."""
        return Progress(self.exported, self.skipped)
