"""Finds an export's orchestration by operation id, describes it, and cancels it."""
from __future__ import annotations

import re
from typing import Any, Optional

from shared.api.status import OperationState, describe_operation
from shared.export.step_watch import withdraw
from shared.export.work_store import WorkStore
from shared.settings import WorkSettings

CANCEL_REASON = "Canceled by the caller."
_OPERATION_ID = re.compile(r"^[0-9a-f]{32}$")
_ENDED = {"Completed", "Failed", "Terminated", "Canceled"}


class OperationNotFoundError(Exception):
    """No export operation has the given id; becomes a 404."""


class OperationFinishedError(Exception):
    """The export operation has already ended, so it cannot be canceled; becomes a 409."""


async def find_export(client: Any, operation_id: str, orchestrator: str) -> Any:
    """The durable status of export `operation_id` (with its input); raise OperationNotFoundError if there is none."""
    status = await client.get_status(operation_id, show_input=True) if _OPERATION_ID.match(operation_id) else None
    if not status or status.name != orchestrator:
        raise OperationNotFoundError(f"No export operation has the id '{operation_id}'.")
    return status


def describe_export(operation_id: str, status: Any, api_version: int,
                    runtime_status: Optional[str] = None) -> OperationState:
    """The operation body for a durable status, optionally as if its runtime status were `runtime_status`."""
    return describe_operation(operation_id, runtime_status or status.runtime_status.value, status.input_,
                              status.custom_status, status.output, status.created_time, status.last_updated_time,
                              api_version)


def _refuse_ended(operation_id: str, status: Any, api_version: int) -> None:
    if status.runtime_status.value in _ENDED:
        ended = describe_export(operation_id, status, api_version).body["status"]
        raise OperationFinishedError(
            f"The export operation '{operation_id}' has already ended ({ended}) and cannot be canceled.")


async def cancel_export(client: Any, operation_id: str, orchestrator: str, api_version: int) -> OperationState:
    """Terminate a running export's orchestration and describe it as canceled; raise if unknown or already ended.

    After terminating, the destination is revoked and the call waits until no running step can write any more
    (see `withdraw`), so nothing is written after the answer. Termination is queued by the Durable extension: until
    it takes effect the status read back may still say running, and the answer says canceled all the same; if the
    export ended first, this raises OperationFinishedError.
    """
    _refuse_ended(operation_id, await find_export(client, operation_id, orchestrator), api_version)
    await client.terminate(operation_id, CANCEL_REASON)
    work = await WorkStore.connect(WorkSettings.from_environment())
    await withdraw(work, operation_id)
    status = await find_export(client, operation_id, orchestrator)
    if status.runtime_status.value != "Terminated":
        _refuse_ended(operation_id, status, api_version)
    return describe_export(operation_id, status, api_version, runtime_status="Terminated")
