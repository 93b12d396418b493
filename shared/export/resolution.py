"""Resolves the export's identifiers into stored batches of instances, a bounded slice per call."""
from __future__ import annotations

import asyncio
from typing import Dict, List, Optional, Sequence, Union

from shared.deid.deidentification import Deidentification
from shared.destination.error_log import ErrorLog
from shared.export.payloads import (
    Batching,
    InstanceBatch,
    ListingCursor,
    ResolvedBatches,
    ResolveRequest,
    SourceInstance,
)
from shared.export.work_store import WorkStore
from shared.identifiers import DicomIdentifier, parse_identifier
from shared.source.protocol import NOT_FOUND_MESSAGES, DicomStore, InstancePage
from shared.study_selection import StudySelection, parse_export_entry

WAVES_PER_RESOLUTION = 4
FIRST_BATCH_SIZE = 100
# A batch tells a store outage (OUTAGE_RUN unserved in a row) from bad instances, and pays a fixed cost per batch:
# a short wave is not cut into batches smaller than this.
SMALLEST_EVEN_BATCH = 25
LISTINGS_PER_RESOLUTION = 200
LISTINGS_IN_FLIGHT = 8
LISTING_PAGE_LIMIT = 5000  # the most instances one Azure listing page returns
Entry = Union[DicomIdentifier, StudySelection]  # what an export takes: identifiers, or one selection of studies


class _Listings:
    """Lists the slice's study and series identifiers in order, keeping up to 8 first pages in flight ahead of the
    one being read; at most LISTINGS_PER_RESOLUTION listing calls are started in all."""

    def __init__(self, store: DicomStore, identifiers: Sequence[Entry], cursor: Optional[ListingCursor],
                 page_size: int):
        self._store = store
        self._identifiers = identifiers
        self._first_token = cursor.token if cursor else None
        self._page_size = page_size
        self._waiting = [i for i, identifier in enumerate(identifiers) if identifier.level != "instance"][::-1]
        self._ahead: Dict[int, asyncio.Future] = {}
        self.started = 0

    def _list(self, entry: Entry, token: Optional[str]) -> asyncio.Future:
        self.started += 1
        listing = self._store.list_selected(entry, token, self._page_size) if isinstance(entry, StudySelection) \
            else self._store.list_instances(entry, token, self._page_size)
        return asyncio.ensure_future(listing)

    def _fill(self) -> None:
        while self._waiting and len(self._ahead) < LISTINGS_IN_FLIGHT and self.started < LISTINGS_PER_RESOLUTION:
            index = self._waiting.pop()
            self._ahead[index] = self._list(self._identifiers[index], self._first_token if index == 0 else None)

    def can_list(self) -> bool:
        """Whether another listing call may start in this resolution."""
        return self.started < LISTINGS_PER_RESOLUTION

    async def first_page(self, index: int) -> Optional[InstancePage]:
        """The first page of identifier `index` (from the carried cursor for index 0); None when over budget."""
        self._fill()
        listing = self._ahead.pop(index, None)
        if listing is None:
            return None
        self._fill()
        return await listing

    async def next_page(self, identifier: Entry, token: str) -> InstancePage:
        """The page after `token`."""
        return await self._list(identifier, token)

    async def close(self) -> None:
        """Cancel the listings read ahead that this resolution will not use."""
        for listing in self._ahead.values():
            listing.cancel()
        await asyncio.gather(*self._ahead.values(), return_exceptions=True)


def _cut(instances: Sequence[SourceInstance], most: int, batching: Batching) -> List[InstanceBatch]:
    batches: List[InstanceBatch] = []
    current: List[SourceInstance] = []
    current_bytes = 0
    for item in instances:
        size = item.size if item.size is not None else batching.unknown_size
        if current and (len(current) == most or current_bytes + size > batching.max_bytes):
            batches.append(InstanceBatch.of(current))
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        batches.append(InstanceBatch.of(current))
    return batches


def cut_batches(instances: Sequence[SourceInstance], batching: Batching) -> List[InstanceBatch]:
    """Cut `instances`, in order, into batches of at most `batch_size` instances and `max_bytes` listed bytes, in a
    number of batches that fills whole waves of `batches_in_flight` when there are instances enough.

    A batch is cut when the next instance would take it over either bound, so an instance larger than `max_bytes`
    goes alone. An instance of unknown size (named by the caller, or not sized by the store's listing) counts as
    `batching.unknown_size`. When the cut leaves the last wave short (say 6 batches for 4 in flight), the instances
    are cut again into evenly smaller batches (8), so no wave runs at a fraction of the export's copies in flight;
    but never into batches under SMALLEST_EVEN_BATCH instances.
    """
    batches = _cut(instances, batching.batch_size, batching)
    whole_waves = -(-len(batches) // batching.batches_in_flight) * batching.batches_in_flight
    if len(batches) < whole_waves and len(instances) >= whole_waves * SMALLEST_EVEN_BATCH:
        batches = _cut(instances, -(-len(instances) // whole_waves), batching)
    return batches


def _listed(page: InstancePage) -> List[SourceInstance]:
    sizes = page.sizes or [None] * len(page.instances)
    md5s = page.md5s or [None] * len(page.instances)
    return [SourceInstance(instance, False, size, md5) for instance, size, md5 in zip(page.instances, sizes, md5s)]


async def resolve_batches(request: ResolveRequest, store: DicomStore, work: WorkStore, log: ErrorLog) -> ResolvedBatches:
    """Resolve identifiers from `request.position` into about four waves of stored batches (4 × batches in flight
    × batch size instances, cut by count and bytes, see `cut_batches`; for the export's first call, which nothing is
    copied beside, one wave of batches of at most 100); log identifiers matching nothing (as the caller sent them).

    Instance identifiers become instances at once (the copy reports one the store lacks). Studies and series are
    listed whole pages at a time, up to 8 listings in flight, at most 200 listing calls per call; a study cut short
    is carried on in the returned cursor.
    """
    batching = request.batching
    if request.first_batch == 0:  # the first copies wait for the first slice: one wave of batches of at most 100
        capacity = min(batching.batch_size, FIRST_BATCH_SIZE) * batching.batches_in_flight
    else:
        capacity = batching.batch_size * batching.batches_in_flight * WAVES_PER_RESOLUTION
    deidentification = Deidentification.of_export(request.deidentify)  # shortfalls name series by their pseudonyms
    shown = (lambda text: str(deidentification.exported_as(parse_identifier(text)))) if deidentification else str
    texts = await work.load_identifiers(request.operation_id, request.position,
                                        min(capacity, request.identifier_count - request.position))
    identifiers = [parse_export_entry(text) for text in texts]
    listings = _Listings(store, identifiers, request.continuation, min(capacity, LISTING_PAGE_LIMIT))
    found: List[SourceInstance] = []
    position, cursor, skipped = request.position, None, 0
    try:
        for index, identifier in enumerate(identifiers):
            if len(found) >= capacity:
                break
            if identifier.level == "instance":
                found.append(SourceInstance(identifier, named=True))
                position += 1
                continue
            page = await listings.first_page(index)
            if page is None:
                break
            matched = bool(request.continuation and index == 0 and request.continuation.found)
            while True:
                found.extend(_listed(page))
                for shortfall in page.shortfalls:
                    log.add(shown(shortfall.identifier), shortfall.message())
                    skipped += shortfall.missing
                matched = matched or bool(page.instances) or bool(page.shortfalls)
                if page.continuation is None or len(found) >= capacity or not listings.can_list():
                    break
                page = await listings.next_page(identifier, page.continuation)
            if page.continuation is not None:
                cursor = ListingCursor(page.continuation, matched)
                break
            position += 1
            if not matched and identifier.level in NOT_FOUND_MESSAGES:  # a selection may match nothing
                log.add(texts[index], NOT_FOUND_MESSAGES[identifier.level])
                skipped += 1
    finally:
        await listings.close()
    batches = cut_batches(found, request.batching)
    await work.save_batches(request.operation_id, request.first_batch, batches)
    return ResolvedBatches(len(batches), len(found), position, cursor, skipped)
