"""Finds an export's orchestration by operation id, tells its runtime status, describes it, and cancels it."""
from __future__ import annotations

from typing import Any, Optional

from shared.api.cancellation_notice import announce_cancellation, cancellation_notice
from shared.api.status import OperationState, checkpoint_of, describe_operation
from shared.export.orphan_sweep import ENDED_STATUSES
from shared.export.step_watch import withdraw
from shared.export.work_store import WorkStore, is_operation_id
from shared.settings import WorkSettings

CANCEL_REASON = "Canceled by the caller."


class OperationNotFoundError(Exception):
    """No export operation has the given id; becomes a 404."""


class OperationFinishedError(Exception):
    """The export operation has already ended, so it cannot be canceled; becomes a 409."""


async def find_export(client: Any, operation_id: str, orchestrator: str) -> Any:
    """The durable status of export `operation_id` (with its input); raise OperationNotFoundError if there is none."""
    status = await client.get_status(operation_id, show_input=True) if is_operation_id(operation_id) else None
    if not status or status.name != orchestrator:
        raise OperationNotFoundError(f"No export operation has the id '{operation_id}'.")
    return status


async def export_runtime_status(client: Any, operation_id: str, orchestrator: str) -> Optional[str]:
    """The durable runtime status of export `operation_id` ("Running", "Completed", …); None if there is none."""
    try:
        return (await find_export(client, operation_id, orchestrator)).runtime_status.value
    except OperationNotFoundError:
        return None


def describe_export(operation_id: str, status: Any, api_version: int, runtime_status: Optional[str] = None,
                    notification: Optional[str] = None) -> OperationState:
    """The operation body for a durable status, optionally as if its runtime status were `runtime_status`."""
    return describe_operation(operation_id, runtime_status or status.runtime_status.value, status.input_,
                              status.custom_status, status.output, status.created_time, status.last_updated_time,
                              api_version, notification)


async def read_export(client: Any, operation_id: str, orchestrator: str, api_version: int) -> OperationState:
    """The operation body of export `operation_id`; for a canceled export that notifies, how its event fared."""
    status = await find_export(client, operation_id, orchestrator)
    checkpoint, notification = checkpoint_of(status.input_), None
    if status.runtime_status.value == "Terminated" and checkpoint and checkpoint.notify:
        notification = await cancellation_notice(client, operation_id)
    return describe_export(operation_id, status, api_version, notification=notification)


def _refuse_ended(operation_id: str, status: Any, api_version: int) -> None:
    state = describe_export(operation_id, status, api_version)
    if status.runtime_status.value in ENDED_STATUSES or not state.in_progress:  # or delivering its completion event
        raise OperationFinishedError(f"The export operation '{operation_id}' has already ended "
                                     f"({state.body['status']}) and cannot be canceled.")


async def cancel_export(client: Any, operation_id: str, orchestrator: str, api_version: int) -> OperationState:
    """Terminate a running export's orchestration and describe it as canceled; raise if unknown or already ended.

    After terminating, the destination is revoked and the call waits until no running step can write any more
    (see `withdraw`), so nothing is written after the answer. Termination is queued by the Durable extension: until
    it takes effect the status read back may still say running, and the answer says canceled all the same; if the
    export ended first, this raises OperationFinishedError. An export that notifies has its completion event queued
    with `export_notifier` once the drain is over (the answer says `"notification": "pending"`).
    """
    _refuse_ended(operation_id, await find_export(client, operation_id, orchestrator), api_version)
    await client.terminate(operation_id, CANCEL_REASON)
    work = await WorkStore.connect(WorkSettings.from_environment())
    await withdraw(work, operation_id)
    status = await find_export(client, operation_id, orchestrator)
    if status.runtime_status.value != "Terminated":
        _refuse_ended(operation_id, status, api_version)
    checkpoint, notification = checkpoint_of(status.input_), None
    if checkpoint and checkpoint.notify:
        canceled = describe_export(operation_id, status, 2, runtime_status="Terminated").body
        notification = await announce_cancellation(client, checkpoint, canceled)
    return describe_export(operation_id, status, api_version, runtime_status="Terminated", notification=notification)
