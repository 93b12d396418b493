"""Resolves the export's identifiers into stored batches of instances, a bounded slice per call."""
from __future__ import annotations

from typing import List, Tuple

from shared.dicom_store import NOT_FOUND_MESSAGES, DicomStore
from shared.error_log import ErrorLog
from shared.export_state import InstanceBatch, ListingCursor, ResolvedBatches, ResolveRequest
from shared.identifiers import DicomIdentifier, parse_identifier
from shared.work_store import WorkStore

BATCHES_PER_RESOLUTION = 50
LISTINGS_PER_RESOLUTION = 200


async def resolve_batches(request: ResolveRequest, store: DicomStore, work: WorkStore, log: ErrorLog) -> ResolvedBatches:
    """Resolve identifiers from `request.position` into at most 50 stored batches; log identifiers matching nothing.

    Instance identifiers become instances at once (the copy reports one the store lacks); studies and series are
    listed, at most 200 listing calls per call, and a listing cut short is carried on in the returned cursor.
    """
    capacity = request.batching.batch_size * BATCHES_PER_RESOLUTION
    texts = await work.load_identifiers(request.operation_id, request.position,
                                        min(capacity, request.identifier_count - request.position))
    found: List[Tuple[DicomIdentifier, bool]] = []
    position, cursor, skipped, listings = request.position, request.continuation, 0, 0
    for text in texts:
        if len(found) >= capacity or listings >= LISTINGS_PER_RESOLUTION:
            break
        identifier = parse_identifier(text)
        if identifier.level == "instance":
            found.append((identifier, True))
            position += 1
            continue
        token, matched = (cursor.token, cursor.found) if cursor else (None, False)
        cursor = None
        while len(found) < capacity and listings < LISTINGS_PER_RESOLUTION:
            page = await store.list_instances(identifier, token, capacity - len(found))
            listings += 1
            found.extend((instance, False) for instance in page.instances)
            matched = matched or bool(page.instances)
            token = page.continuation
            if token is None:
                break
        if token is not None:
            cursor = ListingCursor(token, matched)
            break
        position += 1
        if not matched:
            log.add(text, NOT_FOUND_MESSAGES[identifier.level])
            skipped += 1
    size = request.batching.batch_size
    batches = [InstanceBatch.of(found[i:i + size]) for i in range(0, len(found), size)]
    await work.save_batches(request.operation_id, request.first_batch, batches)
    return ResolvedBatches(len(batches), len(found), position, cursor, skipped)
