"""Resolves identifiers into batches of instances, one bounded wave at a time."""
from __future__ import annotations

from typing import List

from shared.dicom_store import NOT_FOUND_MESSAGES, DicomStore
from shared.error_log import ErrorLog
from shared.export_state import InstanceBatch, ListingCursor, ResolvedWave, ResolveRequest
from shared.identifiers import DicomIdentifier, parse_identifier


async def resolve_wave(request: ResolveRequest, store: DicomStore, log: ErrorLog) -> ResolvedWave:
    """List instances for the request's identifiers until a wave is full; log each identifier that matches nothing."""
    wave_size = request.batching.wave_size
    instances: List[DicomIdentifier] = []
    consumed = skipped = 0
    cursor = request.continuation
    for text in request.identifiers:
        identifier = parse_identifier(text)
        token, found = (cursor.token, cursor.found) if cursor else (None, False)
        cursor = None
        while len(instances) < wave_size:
            page = await store.list_instances(identifier, token, wave_size - len(instances))
            instances.extend(page.instances)
            found = found or bool(page.instances)
            token = page.continuation
            if token is None:
                break
        if token is not None:
            cursor = ListingCursor(token, found)
            break
        consumed += 1
        if not found:
            log.add(text, NOT_FOUND_MESSAGES[identifier.level])
            skipped += 1
        if len(instances) >= wave_size:
            break
    size = request.batching.batch_size
    batches = tuple(InstanceBatch.of(tuple(instances[i:i + size])) for i in range(0, len(instances), size))
    return ResolvedWave(batches, consumed, cursor, skipped)
