"""The values an export passes between its functions: the checkpoint, resolution waves, batches and counts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Optional, Tuple

from shared.identifiers import DicomIdentifier
from shared.payload import Payload


@dataclass(frozen=True)
class Progress(Payload):
    """How many instances were exported and how many identifiers or instances were skipped."""

    exported: int = 0
    skipped: int = 0

    def __add__(self, other: "Progress") -> "Progress":
        return Progress(self.exported + other.exported, self.skipped + other.skipped)


@dataclass(frozen=True)
class Batching(Payload):
    """Instances per copy activity, copy activities per wave, and copies in flight inside one activity."""

    batch_size: int
    batches_in_flight: int
    copies_per_batch: int

    @property
    def wave_size(self) -> int:
        """The most instances one resolution wave hands out."""
        return self.batch_size * self.batches_in_flight


@dataclass(frozen=True)
class SeriesGroup(Payload):
    """SOP instance UIDs of one series, grouped so a batch repeats no study or series UID."""

    study: str
    series: str
    sops: Tuple[str, ...]


@dataclass(frozen=True)
class InstanceBatch(Payload):
    """The instances one copy activity exports."""

    groups: Tuple[SeriesGroup, ...]

    @classmethod
    def of(cls, instances: Tuple[DicomIdentifier, ...]) -> "InstanceBatch":
        """Group instance-level identifiers by series, keeping their order."""
        groups: list = []
        for instance in instances:
            if groups and (groups[-1][0], groups[-1][1]) == (instance.study, instance.series):
                groups[-1][2].append(instance.sop)
            else:
                groups.append((instance.study, instance.series, [instance.sop]))
        return cls(tuple(SeriesGroup(s, se, tuple(sops)) for s, se, sops in groups))

    def instances(self) -> Iterator[DicomIdentifier]:
        """Every instance in the batch, as instance-level identifiers."""
        for group in self.groups:
            for sop in group.sops:
                yield DicomIdentifier(group.study, group.series, sop)

    def __len__(self) -> int:
        return sum(len(g.sops) for g in self.groups)


@dataclass(frozen=True)
class ListingCursor(Payload):
    """Where listing the first unfinished identifier stands, and whether it has matched an instance yet."""

    token: str
    found: bool


@dataclass(frozen=True)
class ResolveRequest(Payload):
    """Input of `resolve_wave`: where resolution stands and how much to hand out."""

    operation_id: str
    destination: str
    identifiers: Tuple[str, ...]
    continuation: Optional[ListingCursor]
    batching: Batching


@dataclass(frozen=True)
class ResolvedWave(Payload):
    """Output of `resolve_wave`: batches to copy now and how far resolution got."""

    batches: Tuple[InstanceBatch, ...]
    consumed: int
    continuation: Optional[ListingCursor]
    skipped: int
    refusal: Optional[str] = None


@dataclass(frozen=True)
class CopyRequest(Payload):
    """Input of `copy_batch`: one batch and the sealed destination to copy it to."""

    operation_id: str
    destination: str
    batch: InstanceBatch
    copies_in_flight: int


@dataclass(frozen=True)
class BatchOutcome(Payload):
    """Output of `copy_batch`: counts, and the destination's refusal when it would not take the files."""

    exported: int = 0
    skipped: int = 0
    refusal: Optional[str] = None

    @property
    def progress(self) -> Progress:
        """The counts alone."""
        return Progress(self.exported, self.skipped)


@dataclass(frozen=True)
class ExportCheckpoint(Payload):
    """The orchestration input: everything an export needs to go on, carried across continue-as-new."""

    operation_id: str
    created_time: str
    error_href: str
    destination: str
    identifiers: Tuple[str, ...]
    continuation: Optional[ListingCursor]
    batching: Batching
    progress: Progress = Progress()

    @property
    def finished(self) -> bool:
        """Whether every identifier has been resolved and copied."""
        return not self.identifiers

    def resolve_request(self) -> ResolveRequest:
        """The next wave's resolution request; it names at most one wave's worth of identifiers."""
        return ResolveRequest(self.operation_id, self.destination, self.identifiers[: self.batching.wave_size],
                              self.continuation, self.batching)

    def copy_request(self, batch: InstanceBatch) -> CopyRequest:
        """The copy request for one batch of this export."""
        return CopyRequest(self.operation_id, self.destination, batch, self.batching.copies_per_batch)

    def advance(self, wave: ResolvedWave, progress: Progress) -> "ExportCheckpoint":
        """The checkpoint after `wave` was copied with `progress` counted so far."""
        return replace(self, identifiers=self.identifiers[wave.consumed:], continuation=wave.continuation,
                       progress=progress)
