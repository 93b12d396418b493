"""The host stand-in behaves like the Durable extension: fail-fast fan-in, retry timers, queued terminate, one limit.

The fan-in test drives a tiny orchestrator of its own (the export's no longer acts before its wave settles); the
others drive the real `export_orchestrator` with activities made to fail or wait through `before_activity`.
"""
import asyncio
import json
import time
from datetime import timedelta

import aiohttp
import azure.durable_functions as df
import azure.functions as func
import pytest

from tests.dicom_samples import new_uid
from tests.durable_episodes import (
    ORCHESTRATOR_STARTED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    ScheduledTask,
    host_json_activity_limit,
    parse_timestamp,
)
from tests.durable_host import DurableHost, Instance
from tests.export_client import container_settings, export_body, post_export

WAIT = 30  # seconds before a wait that the stand-in should end promptly gives up, so a regression fails, not hangs

tiny = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@tiny.orchestration_trigger(context_name="context")
def fan_in_then_tidy(context: df.DurableOrchestrationContext):
    """Call `step` on every input value at once; if the fan-in fails, call `tidy` and fail."""
    tasks = [context.call_activity("step", value) for value in context.get_input()]
    try:
        return (yield context.task_all(tasks))
    except Exception:
        yield context.call_activity("tidy", None)
        raise


@tiny.orchestration_trigger(context_name="context")
def fan_in_with_retries(context: df.DurableOrchestrationContext):
    """Call `step`, with up to three attempts each, on every input value at once; return the results in order."""
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    return (yield context.task_all([context.call_activity_with_retry("step", retry, v) for v in context.get_input()]))


@tiny.orchestration_trigger(context_name="context")
def fail_and_retry_then_tidy(context: df.DurableOrchestrationContext):
    """Call `step` on "fails" plainly and on "retries" with retry options; if the fan-in fails, return `tidy`'s result.

    One attempt is all "retries" gets, but the SDK still waits for the retry timer DTFx sets after it fails.
    """
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=1)
    try:
        yield context.task_all([context.call_activity("step", "fails"),
                                context.call_activity_with_retry("step", retry, "retries")])
    except Exception:
        return (yield context.call_activity("tidy", "tidied"))


@tiny.activity_trigger(input_name="value")
def step(value: str) -> str:
    """Return its input (the hook decides whether it fails or waits)."""
    return value


@tiny.activity_trigger(input_name="value")
def tidy(value: str) -> str:
    """Return its input (the hook records when it starts)."""
    return value


@pytest.fixture(scope="module")
def tiny_functions():
    """The tiny app's index, taken once."""
    return tiny.get_functions()


def _start(loop, host, azurite, destination, values):
    response = post_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)))
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def _study(put_instance, count):
    study, series = new_uid(), new_uid()
    for _ in range(count):
        put_instance(study, series, new_uid())
    return study


def _episode_start(history, index):
    return parse_timestamp(next(e for e in reversed(history[:index]) if e["EventType"] == ORCHESTRATOR_STARTED)
                           ["Timestamp"])


def test_a_failed_task_fails_the_fan_in_while_a_sibling_still_runs(loop, tiny_functions):
    stand_in = DurableHost(tiny_functions)
    stand_in.instances["fan"] = Instance("fan", "fan_in_then_tidy", json.dumps(["fails", "waits", "returns"]))
    events, tidying = [], asyncio.Event()

    async def hook(name, value, attempt):
        events.append(f"start {name} {value}")
        if value == "fails":
            raise ValueError("refused")
        if value == "waits":  # it ends only once the orchestrator has acted on the failure
            await asyncio.wait_for(tidying.wait(), WAIT)
            events.append("end step waits")
        if name == "tidy":
            tidying.set()

    stand_in.before_activity = hook
    instance = loop.run_until_complete(stand_in.run("fan"))
    assert events == ["start step fails", "start step waits", "start step returns", "start tidy None",
                      "end step waits"]
    assert instance.runtime_status == "Failed" and "ValueError: refused" in instance.output
    history = instance.histories[-1]
    assert [e["Name"] for e in history if e["EventType"] == TASK_SCHEDULED] == ["step", "step", "step", "tidy"]
    tidy_scheduled = next(i for i, e in enumerate(history) if e.get("Name") == "tidy")
    delivered = [(e["EventType"], e["TaskScheduledId"]) for e in history[:tidy_scheduled]
                 if e["EventType"] in (TASK_COMPLETED, TASK_FAILED)]
    assert (TASK_FAILED, 0) in delivered and (TASK_COMPLETED, 1) not in delivered


def test_retried_siblings_each_get_their_own_result(loop, tiny_functions):
    failures = {"a": 0, "b": 2, "c": 1, "d": 2, "e": 0, "f": 1}  # how many first attempts of each fail
    stand_in = DurableHost(tiny_functions)
    stand_in.instances["retries"] = Instance("retries", "fan_in_with_retries", json.dumps(list(failures)))
    attempts = {value: [] for value in failures}

    async def fail_early_attempts(name, value, attempt):
        attempts[value].append(attempt)
        await asyncio.sleep(0.001 * (ord(value) % 3))  # completions and failures interleave across episodes
        if attempt <= failures[value]:
            raise ConnectionResetError(f"attempt {attempt} of {value}")

    stand_in.before_activity = fail_early_attempts
    instance = loop.run_until_complete(stand_in.run("retries"))
    assert (instance.runtime_status, instance.output) == ("Completed", list(failures))
    assert attempts == {value: list(range(1, count + 2)) for value, count in failures.items()}
    kinds = [e["EventType"] for e in instance.histories[-1]]
    assert (kinds.count(TASK_SCHEDULED), kinds.count(TASK_FAILED), kinds.count(TIMER_CREATED),
            kinds.count(TIMER_FIRED), kinds.count(TASK_COMPLETED)) == (12, 6, 6, 6, 6)


def test_ids_follow_the_sdk_when_a_failure_and_a_retried_failure_arrive_together(loop, tiny_functions):
    stand_in = DurableHost(tiny_functions)
    stand_in.instances["both"] = Instance("both", "fail_and_retry_then_tidy", "null")
    started, both_started = [], asyncio.Event()

    async def fail_together(name, value, attempt):
        started.append((value, attempt))
        if name == "step" and attempt == 1:
            if len(started) == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), WAIT)  # both fail in the same loop turn: one batch
            raise ConnectionResetError(value)

    stand_in.before_activity = fail_together
    instance = loop.run_until_complete(stand_in.run("both"))
    # the SDK numbers `tidy` (scheduled on reading the first failure) before the retry timer of the second
    assert (instance.runtime_status, instance.output) == ("Completed", "tidied")
    assert sorted(started) == [("fails", 1), ("retries", 1), ("tidied", 1)]
    numbered = [(e["EventType"], e["EventId"], e.get("Name")) for e in instance.histories[-1]
                if e["EventType"] in (TASK_SCHEDULED, TIMER_CREATED)]
    assert numbered == [(TASK_SCHEDULED, 0, "step"), (TASK_SCHEDULED, 1, "step"), (TASK_SCHEDULED, 2, "tidy"),
                        (TIMER_CREATED, 3, None)]


def test_a_retry_waits_its_interval_on_a_timer_in_the_history(loop, host, azurite, destination, put_instance):
    host.retry_interval_scale = 0.02  # the app's 5 s first interval becomes 100 ms
    interval = timedelta(milliseconds=100)
    operation_id = _start(loop, host, azurite, destination, [_study(put_instance, 2)])
    attempts = []

    def fail_first_copy(name, request, attempt):
        if name == "copy_batch":
            attempts.append((attempt, time.time()))
            if attempt == 1:
                raise ConnectionResetError("worker lost its connection")

    host.before_activity = fail_first_copy
    instance = loop.run_until_complete(host.run(operation_id))
    assert (instance.runtime_status, instance.output["exported"]) == ("Completed", 2)
    (first, failed_at), (second, retried_at) = attempts
    assert (first, second) == (1, 2) and retried_at - failed_at >= interval.total_seconds()
    history = next(h for h in instance.histories if any(e["EventType"] == TASK_FAILED for e in h))
    failed = next(i for i, e in enumerate(history) if e["EventType"] == TASK_FAILED)
    created = [(i, e) for i, e in enumerate(history) if e["EventType"] == TIMER_CREATED]
    fired = [(i, e) for i, e in enumerate(history) if e["EventType"] == TIMER_FIRED]
    assert len(created) == len(fired) == 1
    (created_at, timer), (fired_at, firing) = created[0], fired[0]
    fire_at = parse_timestamp(timer["FireAt"])
    assert failed < created_at < fired_at and (firing["TimerId"], firing["FireAt"]) == (timer["EventId"],
                                                                                        timer["FireAt"])
    assert fire_at - _episode_start(history, failed + 1) == interval  # now (the episode's time) + the interval
    assert _episode_start(history, fired_at + 1) >= fire_at and retried_at >= fire_at.timestamp()
    rescheduled = history[fired_at + 1]
    assert (rescheduled["EventType"], rescheduled["Name"]) == (TASK_SCHEDULED, "copy_batch")


def test_retry_intervals_back_off_up_to_their_cap():
    retry = {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 5, "backoffCoefficient": 2,
             "maxRetryIntervalInMilliseconds": 3000}
    delays = [ScheduledTask("copy_batch", "{}", retry, attempt).retry_delay(0.5) for attempt in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (0.5, 1, 1.5, 1.5)]
    plain = ScheduledTask("copy_batch", "{}", {"firstRetryIntervalInMilliseconds": 5000, "maxNumberOfAttempts": 4}, 3)
    assert plain.retry_delay(1) == timedelta(seconds=5)


async def _manage(host, method, path):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"http://127.0.0.1:{host.port}/durabletask/instances/{path}") as response:
            return response.status, (await response.json() if response.content_type == "application/json" else None)


def test_terminate_is_queued_until_the_runner_reads_the_queue(loop, host, azurite, destination, put_instance):
    operation_id = _start(loop, host, azurite, destination, [_study(put_instance, 1)])
    assert loop.run_until_complete(_manage(host, "POST", f"{operation_id}/terminate?reason=Stopped.")) == (202, None)
    status, body = loop.run_until_complete(_manage(host, "GET", operation_id))
    assert (status, body["runtimeStatus"], body["output"]) == (202, "Pending", None)  # no runner has read it yet
    started = []
    host.before_activity = lambda name, request, attempt: started.append(name)
    instance = loop.run_until_complete(host.run(operation_id))
    assert (instance.runtime_status, instance.output, started, instance.histories) == ("Terminated", "Stopped.", [],
                                                                                       [])
    status, body = loop.run_until_complete(_manage(host, "GET", operation_id))
    assert (status, body["runtimeStatus"], body["output"]) == (200, "Terminated", "Stopped.")


def test_terminate_while_an_activity_runs_drops_its_result(loop, host, azurite, destination, put_instance):
    operation_id = _start(loop, host, azurite, destination, [_study(put_instance, 1)])
    seen, started = [], []

    async def terminate_during_copy(name, request, attempt):
        started.append(name)
        if name == "copy_batch":
            instance = host.instances[operation_id]
            seen.append(await _manage(host, "POST", f"{operation_id}/terminate?reason=Stopped."))
            await asyncio.wait_for(_until(lambda: instance.runtime_status != "Running"), WAIT)
            seen.append((instance.runtime_status, instance.output))  # while this activity still runs

    host.before_activity = terminate_during_copy
    instance = loop.run_until_complete(host.run(operation_id))
    assert seen == [(202, None), ("Terminated", "Stopped.")]
    assert (instance.runtime_status, started) == ("Terminated", ["resolve_batches", "copy_batch"])
    history = instance.histories[-1]
    copy_id = next(e["EventId"] for e in history if e.get("Name") == "copy_batch")
    assert [e for e in history if e.get("TaskScheduledId") == copy_id] == []  # its result was dropped
    assert [e["Name"] for e in history if e["EventType"] == TASK_SCHEDULED] == ["copy_batch"]  # nothing after it
    assert len(list(destination.list_blobs(name_starts_with=f"{operation_id}/results/"))) == 1  # it did finish
    assert loop.run_until_complete(_manage(host, "POST", f"{operation_id}/terminate?reason=Again.")) == (410, None)
    assert instance.output == "Stopped."


async def _until(condition):
    while not condition():
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("limit", [None, 3])
def test_no_more_activities_run_at_once_than_the_host_allows(loop, host, azurite, destination, put_instance,
                                                             monkeypatch, limit):
    monkeypatch.setenv("EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("EXPORT_BATCHES_IN_FLIGHT", "12")
    if limit:
        host.max_concurrent_activities = limit
    expected = limit or host_json_activity_limit()
    operation_id = _start(loop, host, azurite, destination, [_study(put_instance, 12)])
    running, peaks, copies = [0], [], []

    async def hold_a_moment(name, request, attempt):
        copies.append(name)
        running[0] += 1
        peaks.append(running[0])
        await asyncio.sleep(0.02)
        running[0] -= 1

    host.before_activity = hold_a_moment
    host.slots.peak = 0
    instance = loop.run_until_complete(host.run(operation_id))
    assert (instance.runtime_status, instance.output["exported"]) == ("Completed", 12)
    assert copies.count("copy_batch") == 12 and max(peaks) == host.slots.peak == expected
