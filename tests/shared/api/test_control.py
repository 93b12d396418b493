"""cancel_export against a durable client whose termination is queued, as the real extension's is."""
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from shared.api.control import CANCEL_REASON, OperationFinishedError, cancel_export

OPERATION_ID = "0123456789abcdef0123456789abcdef"


class QueuedTermination:
    """A durable client whose instance keeps the given runtime statuses, one per status read."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.terminated = []

    async def get_status(self, instance_id, show_input=False):
        when = datetime(2026, 11, 22, tzinfo=timezone.utc)
        return SimpleNamespace(name="export_orchestrator", runtime_status=SimpleNamespace(value=self.statuses.pop(0)),
                               input_=None, custom_status={"exported": 3, "skipped": 1}, output=None,
                               created_time=when, last_updated_time=when)

    async def terminate(self, instance_id, reason):
        self.terminated.append((instance_id, reason))


def test_a_termination_not_yet_applied_still_answers_canceled(loop):
    client = QueuedTermination("Running", "Running")
    state = loop.run_until_complete(cancel_export(client, OPERATION_ID, "export_orchestrator", 2))
    assert (state.status_code, state.body["status"], state.body["results"]["exported"]) == (200, "canceled", 3)
    assert client.terminated == [(OPERATION_ID, CANCEL_REASON)]


def test_an_export_that_ended_before_the_termination_is_409(loop):
    client = QueuedTermination("Running", "Completed")
    with pytest.raises(OperationFinishedError) as error:
        loop.run_until_complete(cancel_export(client, OPERATION_ID, "export_orchestrator", 1))
    assert str(error.value) == (
        f"The export operation '{OPERATION_ID}' has already ended (completed) and cannot be canceled.")
