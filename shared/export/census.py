"""Counts what an export would copy, without copying: the studies, series and instances its entries list, and bytes."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Set

from shared.export.resolution import LISTING_PAGE_LIMIT, LISTINGS_IN_FLIGHT, Entry
from shared.identifiers import DicomIdentifier
from shared.source.protocol import DicomStore, InstancePage
from shared.study_selection import StudySelection


@dataclass
class Census:
    """What the listings found: distinct instances (with their series and studies), their listed bytes, and what
    would be skipped (entries matching nothing, instances the store counts but will not list)."""

    instances: Set[DicomIdentifier] = field(default_factory=set)
    bytes: int = 0
    unsized: int = 0
    skipped: int = 0

    def add(self, page: InstancePage) -> None:
        """Count one listing page."""
        sizes: List[Optional[int]] = page.sizes or [None] * len(page.instances)
        for instance, size in zip(page.instances, sizes):
            if instance not in self.instances:
                self.instances.add(instance)
                self.bytes += size or 0
                self.unsized += size is None
        self.skipped += sum(shortfall.missing for shortfall in page.shortfalls)

    def summary(self) -> dict:
        """`studies`, `series`, `instances`, `totalBytes` (null unless the store gave every size) and `skipped`."""
        return {"studies": len({i.study for i in self.instances}),
                "series": len({(i.study, i.series) for i in self.instances}),
                "instances": len(self.instances), "totalBytes": None if self.unsized else self.bytes,
                "skipped": self.skipped}


async def _list_all(store: DicomStore, entry: Entry, census: Census) -> None:
    token: Optional[str] = None
    matched = False
    while True:
        page = await (store.list_selected(entry, token, LISTING_PAGE_LIMIT) if isinstance(entry, StudySelection)
                      else store.list_instances(entry, token, LISTING_PAGE_LIMIT))
        census.add(page)
        matched = matched or bool(page.instances) or bool(page.shortfalls)
        token = page.continuation
        if token is None:
            break
    if not matched and not isinstance(entry, StudySelection):
        census.skipped += 1


async def take_census(store: DicomStore, entries: Sequence[Entry]) -> Census:
    """List every entry to its end, up to 8 at once (an instance identifier is looked up, unlike in a real export,
    which lets the copy find it missing), and count what was found."""
    census = Census()
    slots = asyncio.Semaphore(LISTINGS_IN_FLIGHT)

    async def count(entry: Entry) -> None:
        async with slots:
            await _list_all(store, entry, census)
    await asyncio.gather(*(count(entry) for entry in entries))
    return census
