"""Ends an export: commits its manifest while the destination is still open, then deletes its working files."""
from __future__ import annotations

from typing import Optional

from shared.destination.manifest import commit_manifest
from shared.export.step_session import run_export_step
from shared.export.work_store import WorkStore
from shared.settings import WorkSettings


async def end_export(operation_id: str) -> Optional[str]:
    """Commit `<id>/manifest.jsonl`, then delete the working files, the sealed destination with them.

    Returns the destination's refusal when it would not take the manifest (the export then fails), else None; an
    export whose destination was already revoked (canceled, or ended by an earlier attempt) is only tidied up.
    """
    work = await WorkStore.connect(WorkSettings.from_environment())
    refusal = None
    if not await work.is_revoked(operation_id):
        async def commit(session) -> Optional[str]:
            async with session.destination.guard():
                await commit_manifest(session.container, operation_id)
            return None
        refusal = await run_export_step(operation_id, commit, refused=lambda message: message)
    await work.discard(operation_id)
    return refusal
