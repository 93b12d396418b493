"""How the Durable extension runs one orchestration generation: episodes, activity slots, retry timers, the queue.

Each completion (or each batch of completions already arrived) is one episode: the host appends OrchestratorStarted
and the new events, replays the orchestrator, commits its decisions (TaskScheduled, TimerCreated) and
OrchestratorCompleted, then waits for the next message. Task and timer ids follow the SDK's sequence numbers: the
SDK numbers a retry's timer when it reads the TaskFailed, and the re-scheduled attempt when it reads the TimerFired,
before anything the orchestrator schedules in that episode; so an episode starts at such an event, never holds one
after another event, and the numbering stays unambiguous.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 10, 11, 12, 13
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CONTINUE_AS_NEW = 0, 1, 4
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


def utc_now() -> datetime:
    """The host's clock."""
    return datetime.now(timezone.utc)


def timestamp(moment: Optional[datetime] = None) -> str:
    """A history timestamp, as the extension writes them."""
    return (moment or utc_now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """The moment a history timestamp names."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def history_event(event_type: int, event_id: int = -1, moment: Optional[datetime] = None, **fields: Any) -> Dict:
    """One history event in the shape the SDK reads."""
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": timestamp(moment), **fields}


def host_json_activity_limit(path: Path = HOST_JSON) -> int:
    """host.json's `extensions.durableTask.maxConcurrentActivityFunctions`."""
    return int(json.loads(path.read_text())["extensions"]["durableTask"]["maxConcurrentActivityFunctions"])


def _flatten(actions: List[Any]) -> List[Dict[str, Any]]:
    flat: List[Dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            flat.extend(_flatten(action))
        elif "compoundActions" in action:
            flat.extend(_flatten(action["compoundActions"]))
        else:
            flat.append(action)
    return flat


@dataclass
class ScheduledTask:
    """One attempt of a scheduled activity, with the retry options it was called with."""

    name: str
    input: str
    retry: Optional[Dict[str, Any]]
    attempt: int = 1

    @property
    def may_retry(self) -> bool:
        """Whether a failure of this attempt is followed by another attempt (after its timer)."""
        return bool(self.retry) and self.attempt < self.retry["maxNumberOfAttempts"]

    def retry_delay(self, scale: float) -> timedelta:
        """DTFx's delay after this attempt fails: first interval × backoff^(attempt-1), capped, then scaled."""
        delay = self.retry["firstRetryIntervalInMilliseconds"] * self.retry.get("backoffCoefficient", 1) ** (
            self.attempt - 1)
        if self.retry.get("maxRetryIntervalInMilliseconds"):
            delay = min(delay, self.retry["maxRetryIntervalInMilliseconds"])
        return timedelta(milliseconds=delay * scale)


class ActivitySlots:
    """The host-wide activity limit: at most `limit` activities run at once; the others wait in order."""

    def __init__(self, limit: int):
        self.limit, self.running, self.peak = limit, 0, 0
        self._waiting: Deque[asyncio.Future] = deque()

    def set_limit(self, limit: int) -> None:
        """Change the limit, letting waiting activities start if it grew."""
        self.limit = limit
        self._hand_over()

    async def __aenter__(self) -> None:
        if self.running < self.limit and not self._waiting:
            self.running += 1
        else:
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            await turn  # the slot is counted when handed over
        self.peak = max(self.peak, self.running)

    async def __aexit__(self, *exc_info: Any) -> None:
        self.running -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiting and self.running < self.limit:
            turn = self._waiting.popleft()
            if not turn.done():
                self.running += 1
                turn.set_result(None)


@dataclass
class Mailbox:
    """An instance's queue: completions tagged with their generation, a pending termination, and its work."""

    messages: Deque[Tuple[int, Dict[str, Any]]] = field(default_factory=deque)
    termination: Optional[str] = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    activities: Set[asyncio.Task] = field(default_factory=set)
    timers: Set[asyncio.Task] = field(default_factory=set)

    def post(self, generation: int, event: Dict[str, Any]) -> None:
        """Queue a completion for the runner."""
        self.messages.append((generation, event))
        self.wake.set()

    def terminate(self, reason: str) -> None:
        """Queue a termination (the first reason wins)."""
        if self.termination is None:
            self.termination = reason
        self.wake.set()


class Generation:
    """One execution of an orchestration, from ExecutionStarted to completion, failure or continue-as-new."""

    def __init__(self, host: Any, instance: Any):
        self.host, self.instance, self.mailbox = host, instance, instance.mailbox
        self.number = instance.generations
        self.history = [history_event(ORCHESTRATOR_STARTED),
                        history_event(EXECUTION_STARTED, Name=instance.name, Input=instance.input, Version="")]
        instance.histories.append(self.history)
        self.next_id = self.actions_seen = 0
        self.tasks: Dict[int, ScheduledTask] = {}
        self.timers: Dict[int, ScheduledTask] = {}
        self.decisions: List[Tuple[Dict[str, Any], Callable[[], None]]] = []

    async def run(self) -> None:
        """Replay episode after episode until the generation ends or its instance is terminated."""
        while True:
            state = self.host.replay(self.instance, self.history)
            if self._apply(state):
                return
            if not self.tasks and not self.timers:
                raise RuntimeError("the orchestrator waits on nothing the host stand-in can deliver")
            self.history.append(history_event(ORCHESTRATOR_COMPLETED))
            batch = await self._next_batch()
            if batch is None:
                return
            started = utc_now()
            self.history.append(history_event(ORCHESTRATOR_STARTED, moment=started))
            for event in batch:
                self.history.append(event)
                self._follow(event, started)

    def _apply(self, state: Dict[str, Any]) -> bool:
        """Publish an episode's outcome and commit its decisions; True when the generation has ended."""
        instance = self.instance
        if "customStatus" in state:
            self.host.note_payload(state["customStatus"])
            instance.custom_status = state["customStatus"]
        instance.last_updated_time = timestamp()
        if "failure" in state:
            instance.runtime_status, instance.output = "Failed", state["failure"]
            return True
        for event, start in self.decisions:
            self.history.append(event)
            start()
        self.decisions = []
        actions = _flatten(state.get("actions", []))
        for action in actions[self.actions_seen:]:
            if action["actionType"] == CONTINUE_AS_NEW:
                self.host.note_payload(action["input"])
                instance.input, instance.created_time = action["input"], timestamp()
                instance.generations += 1
                instance.runtime_status = "ContinuedAsNew"
                return True
            if action["actionType"] not in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
                raise NotImplementedError(f"the host stand-in does not run action {action}")
            self._schedule(ScheduledTask(action["functionName"], action["input"], action.get("retryOptions")))
        self.actions_seen = len(actions)
        if state.get("isDone"):
            instance.runtime_status, instance.output = "Completed", state.get("output")
            return True
        return False

    def _schedule(self, task: ScheduledTask) -> None:
        task_id, self.next_id = self.next_id, self.next_id + 1
        self.tasks[task_id] = task
        self.history.append(history_event(TASK_SCHEDULED, task_id, Name=task.name, Input=task.input))
        self._spawn(self.mailbox.activities, self._perform(task_id, task))

    def _spawn(self, tasks: Set[asyncio.Task], work: Any) -> None:
        running = asyncio.ensure_future(work)
        tasks.add(running)
        running.add_done_callback(tasks.discard)

    async def _perform(self, task_id: int, task: ScheduledTask) -> None:
        async with self.host.slots:
            ok, value = await self.host.invoke(task)
        if ok:
            self.mailbox.post(self.number, history_event(TASK_COMPLETED, TaskScheduledId=task_id, Result=value))
        else:
            self.mailbox.post(self.number, history_event(TASK_FAILED, TaskScheduledId=task_id, Reason=value[0],
                                                         Details=value[1]))

    async def _fire(self, timer_id: int, fire_at: datetime) -> None:
        while (fire_at - utc_now()).total_seconds() > 0:
            await asyncio.sleep((fire_at - utc_now()).total_seconds())
        self.mailbox.post(self.number, history_event(TIMER_FIRED, TimerId=timer_id, FireAt=timestamp(fire_at)))

    def _numbers_a_task(self, event: Dict[str, Any]) -> bool:
        """Whether the SDK takes a sequence number when it reads this event (a retry's timer or next attempt)."""
        if event["EventType"] == TASK_FAILED:
            return bool(self.tasks[event["TaskScheduledId"]].retry)
        return event["EventType"] == TIMER_FIRED and self.timers[event["TimerId"]].may_retry

    async def _next_batch(self) -> Optional[List[Dict[str, Any]]]:
        mailbox = self.mailbox
        while True:
            if mailbox.termination is not None:
                self.host.terminate_now(self.instance)
                return None
            while mailbox.messages and mailbox.messages[0][0] != self.number:
                mailbox.messages.popleft()  # a completion for an earlier generation is dropped, as DTFx does
            if mailbox.messages:
                break
            mailbox.wake.clear()
            await mailbox.wake.wait()
        batch = [mailbox.messages.popleft()[1]]
        while (mailbox.messages and mailbox.messages[0][0] == self.number
               and not self._numbers_a_task(mailbox.messages[0][1])):
            batch.append(mailbox.messages.popleft()[1])
        return batch

    def _follow(self, event: Dict[str, Any], started: datetime) -> None:
        """Note a delivered completion; after a failed attempt or a fired retry timer, decide what DTFx does next."""
        if event["EventType"] == TASK_COMPLETED:
            del self.tasks[event["TaskScheduledId"]]
        elif event["EventType"] == TASK_FAILED:
            task = self.tasks.pop(event["TaskScheduledId"])
            if task.retry:  # DTFx waits the interval even after the last attempt; the SDK expects that timer
                timer_id, self.next_id = self.next_id, self.next_id + 1
                fire_at = started + task.retry_delay(self.host.retry_interval_scale)
                self.timers[timer_id] = task
                self.decisions.append((history_event(TIMER_CREATED, timer_id, FireAt=timestamp(fire_at)),
                                       lambda: self._spawn(self.mailbox.timers, self._fire(timer_id, fire_at))))
        elif event["EventType"] == TIMER_FIRED:
            task = self.timers.pop(event["TimerId"])
            if task.may_retry:
                retry = ScheduledTask(task.name, task.input, task.retry, task.attempt + 1)
                task_id, self.next_id = self.next_id, self.next_id + 1
                self.tasks[task_id] = retry
                self.decisions.append((
                    history_event(TASK_SCHEDULED, task_id, Name=retry.name, Input=retry.input),
                    lambda: self._spawn(self.mailbox.activities, self._perform(task_id, retry))))
