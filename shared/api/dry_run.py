"""A dry run (`?dryRun=true`): every check a start makes, then counts of what would be exported; nothing is written."""
from __future__ import annotations

import uuid
from typing import Any, Dict

from shared.api.request import ExportRequest
from shared.api.start import check_destination, check_export
from shared.export.census import take_census
from shared.settings import ExportSettings, StoreSettings
from shared.source.connect import connect_store
from shared.study_selection import parse_export_entry


async def preview_export(request: ExportRequest, settings: ExportSettings) -> Dict[str, Any]:
    """Check the request as `prepare_export` does (the destination without writing to it), then list what it names.

    The answer: `dryRun`, `source` (identifiers, everything or query), `partition`, the counts of `studies`, `series`
    and `instances`, `totalBytes` (null when the store does not give every size), and `skipped` (identifiers that
    match nothing, and instances the store counts but will not list).
    """
    check_export(request, settings)
    await check_destination(request.destination, settings, uuid.uuid4().hex, write=False)
    store = connect_store(StoreSettings.from_environment(), request.partition)
    census = await take_census(store, [parse_export_entry(text) for text in request.entries()])
    return {"dryRun": True, "source": request.source_kind, "partition": request.partition, **census.summary()}
