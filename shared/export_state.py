"""The values an export passes between its functions: the checkpoint, resolution waves, batches and counts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterator, Optional, Sequence, Tuple

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
    """SOP instance UIDs of one series, grouped so a batch repeats no study or series UID.

    `named` says the caller named these instances directly, so none was seen in the store before copying.
    """

    study: str
    series: str
    sops: Tuple[str, ...]
    named: bool = False


@dataclass(frozen=True)
class InstanceBatch(Payload):
    """The instances one copy activity exports."""

    groups: Tuple[SeriesGroup, ...]

    @classmethod
    def of(cls, instances: Sequence[Tuple[DicomIdentifier, bool]]) -> "InstanceBatch":
        """Group `(instance, named)` pairs by series and by whether they were named, keeping their order."""
        groups: list = []
        for instance, named in instances:
            if groups and groups[-1][:2] == (instance.study, instance.series) and groups[-1][3] == named:
                groups[-1][2].append(instance.sop)
            else:
                groups.append((instance.study, instance.series, [instance.sop], named))
        return cls(tuple(SeriesGroup(s, se, tuple(sops), named) for s, se, sops, named in groups))

    def instances(self) -> Iterator[Tuple[DicomIdentifier, bool]]:
        """Every instance in the batch, as an instance-level identifier and whether the caller named it."""
        for group in self.groups:
            for sop in group.sops:
                yield DicomIdentifier(group.study, group.series, sop), group.named

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


@dataclass(frozen=True)
class ExportCheckpoint(Payload):
    """The orchestration input: where an export stands, carried across continue-as-new; its size never grows."""

    operation_id: str
    created_time: str
    error_href: str
    identifier_count: int
    batching: Batching
    copy_mode: str = "auto"
    position: int = 0
    continuation: Optional[ListingCursor] = None
    batches_resolved: int = 0
    instances_resolved: int = 0
    batches_copied: int = 0
    instances_copied: int = 0
    progress: Progress = Progress()

    @property
    def resolved(self) -> bool:
        """Whether every identifier has been resolved into stored batches."""
        return self.position >= self.identifier_count and self.continuation is None

    @property
    def finished(self) -> bool:
        """Whether every identifier has been resolved and every batch copied."""
        return self.resolved and self.batches_copied >= self.batches_resolved

    @property
    def percent_complete(self) -> Optional[int]:
        """Instances copied out of all instances, once resolution has counted them all; None before."""
        if not self.resolved:
            return None
        if self.instances_resolved == 0:
            return 100
        return self.instances_copied * 100 // self.instances_resolved

    def status(self) -> Dict[str, int]:
        """The custom status the orchestrator publishes: counts, and percentComplete once known."""
        status = self.progress.to_dict()
        if self.percent_complete is not None:
            status["percentComplete"] = self.percent_complete
        return status

    def resolve_request(self) -> ResolveRequest:
        """The next resolution step's request."""
        return ResolveRequest(self.operation_id, self.position, self.continuation, self.identifier_count,
                              self.batches_resolved, self.batching)

    def batches_to_copy(self) -> range:
        """The stored batches this generation copies: up to `batches_in_flight` of them."""
        return range(self.batches_copied,
                     min(self.batches_resolved, self.batches_copied + self.batching.batches_in_flight))

    def copy_request(self, batch_index: int) -> CopyRequest:
        """The copy request for one stored batch of this export."""
        return CopyRequest(self.operation_id, batch_index, self.batching.copies_per_batch, self.copy_mode)

    def advance(self, resolved: Optional[ResolvedBatches], outcomes: Sequence[BatchOutcome]) -> "ExportCheckpoint":
        """The checkpoint after one generation resolved `resolved` (if it resolved) and copied `outcomes`."""
        progress = sum((o.progress for o in outcomes), self.progress)
        settled = next((o.copy_mode for o in outcomes if o.copy_mode != "auto"), self.copy_mode)
        following = replace(
            self, progress=progress, batches_copied=self.batches_copied + len(outcomes),
            instances_copied=self.instances_copied + sum(o.exported + o.skipped for o in outcomes),
            copy_mode=self.copy_mode if self.copy_mode != "auto" else settled)
        if resolved is None:
            return following
        return replace(following, position=resolved.position, continuation=resolved.continuation,
                       batches_resolved=self.batches_resolved + resolved.batches,
                       instances_resolved=self.instances_resolved + resolved.instances,
                       progress=following.progress + Progress(skipped=resolved.skipped))
