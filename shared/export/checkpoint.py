"""The orchestration's checkpoint: where an export stands, carried across continue-as-new, and its counts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence

from shared.export.payloads import (
    Batching,
    BatchOutcome,
    CopyRequest,
    ListingCursor,
    Progress,
    ResolvedBatches,
    ResolveRequest,
)
from shared.partitions import DEFAULT_PARTITION
from shared.payload import Payload


@dataclass(frozen=True)
class ExportCheckpoint(Payload):
    """The orchestration input: where an export stands, carried across continue-as-new; its size never grows."""

    operation_id: str
    created_time: str
    error_href: str
    identifier_count: int
    batching: Batching
    copy_mode: str = "auto"
    partition: str = DEFAULT_PARTITION
    deidentify: Optional[Dict[str, Any]] = None  # the DeidOptions, when the export de-identifies
    notify: bool = False
    service_url: str = ""
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
                              self.batches_resolved, self.batching, self.partition, self.deidentify)

    def batches_to_copy(self) -> range:
        """The stored batches this generation copies: up to `batches_in_flight` of them."""
        return range(self.batches_copied,
                     min(self.batches_resolved, self.batches_copied + self.batching.batches_in_flight))

    def copy_request(self, batch_index: int) -> CopyRequest:
        """The copy request for one stored batch of this export."""
        return CopyRequest(self.operation_id, batch_index, self.batching.copies_per_batch, self.copy_mode,
                           self.partition, self.deidentify)

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
