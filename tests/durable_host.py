"""A stand-in for the Functions host and its Durable extension, driving the app's real functions as the host does.

It indexes `function_app.app`, routes HTTP requests to the HTTP functions with a durable client binding, answers
the management API the SDK client calls (`orchestrators/{name}/{id}`, `instances/{id}`, `.../terminate`), and runs
orchestrations by replaying the real orchestrator through the SDK: replay → run the activities it scheduled →
append their completion events → replay, until it completes, fails or continues as new (which starts a new
history and, as on the Azure Storage backend, resets the instance's createdTime). Activity retries follow the
SDK's protocol: TaskFailed, then a TimerCreated/TimerFired pair, then the re-scheduled task. All completions
of one round are delivered in one episode, which is faithful for orchestrators that schedule new work only
once a fan-in completes (as ours do). Terminating an instance (`instances/{id}/terminate`) marks it Terminated
with the reason as output, as the extension does: activities already running finish, but their results are
dropped and nothing more is scheduled; terminating an ended instance answers 410.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
from aiohttp import web

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 10, 11, 12, 13
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CONTINUE_AS_NEW = 0, 1, 4
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}
ActivityHook = Callable[[str, Dict[str, Any], int], Optional[Awaitable[None]]]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Instance:
    """One orchestration instance as the extension tracks it."""

    instance_id: str
    name: str
    input: Optional[str]
    runtime_status: str = "Pending"
    custom_status: Any = None
    output: Any = None
    created_time: str = field(default_factory=_now)
    last_updated_time: str = field(default_factory=_now)
    generations: int = 0
    longest_history: int = 0
    replay_seconds: float = 0.0

    def status_json(self, show_input: bool) -> Dict[str, Any]:
        """The body of `GET instances/{id}`."""
        body = {"name": self.name, "instanceId": self.instance_id, "runtimeStatus": self.runtime_status,
                "customStatus": self.custom_status, "output": self.output, "createdTime": self.created_time,
                "lastUpdatedTime": self.last_updated_time}
        if show_input:
            body["input"] = self.input
        return body


@dataclass
class _ScheduledTask:
    name: str
    input: str
    retry: Optional[Dict[str, Any]]
    attempt: int = 1


def _event(event_type: int, event_id: int = -1, **fields: Any) -> Dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": _now(), **fields}


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


def _route_pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\{(\w+)(?::[^}]*)?\}", r"(?P<\1>[^/]+)", template) + "$")


class DurableHost:
    """Runs the app's functions: HTTP routing, the durable client's management API, and orchestration replay."""

    def __init__(self, functions: List[Any], public_base: str = "http://localhost:7071"):
        self.public_base = public_base
        self.instances: Dict[str, Instance] = {}
        self.orchestrators: Dict[str, Callable] = {}
        self.activities: Dict[str, tuple] = {}
        self.routes: List[tuple] = []
        self.before_activity: Optional[ActivityHook] = None
        self.largest_payload = 0
        self.payloads: List[str] = []
        for function in functions:
            bindings = {b.type: b for b in function.get_bindings()}
            name, user_function = function.get_function_name(), function.get_user_function()
            if "orchestrationTrigger" in bindings:
                self.orchestrators[name] = user_function
            elif "activityTrigger" in bindings:
                self.activities[name] = (user_function, bindings["activityTrigger"].name)
            elif "httpTrigger" in bindings:
                trigger = bindings["httpTrigger"]
                methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}
                self.routes.append((_route_pattern(trigger.route), methods, user_function))
        self._runner: Optional[web.AppRunner] = None
        self.port = 0

    async def start(self) -> "DurableHost":
        """Serve the management API on a free loopback port."""
        server = web.Application(client_max_size=256 * 1024 * 1024)  # the extension takes large inputs (into blobs)
        server.router.add_post("/durabletask/orchestrators/{name}/{instance_id}", self._start_new)
        server.router.add_get("/durabletask/instances/{instance_id}", self._get_status)
        server.router.add_post("/durabletask/instances/{instance_id}/terminate", self._terminate)
        self._runner = web.AppRunner(server)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner:
            await self._runner.cleanup()

    def client_binding(self) -> str:
        """The durable client binding JSON the worker hands to client functions."""
        base = f"http://127.0.0.1:{self.port}"
        return json.dumps({
            "taskHubName": "TestHub",
            "creationUrls": {}, "managementUrls": {"id": "INSTANCEID",
                                                   "statusQueryGetUri": f"{base}/runtime/webhooks/durabletask/"
                                                                        "instances/INSTANCEID?code=SYSTEMKEY"},
            "baseUrl": f"{base}/runtime/webhooks/durabletask",
            "requiredQueryStringParameters": "code=SYSTEMKEY",
            "rpcBaseUrl": f"{base}/durabletask/",
        })

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: Optional[Dict[str, str]] = None) -> func.HttpResponse:
        """Route an HTTP request to the matching function, as the host does (route prefix ""), or answer 404."""
        url = urlsplit(path)
        for pattern, methods, user_function in self.routes:
            match = pattern.match(url.path.lstrip("/"))
            if match and method.upper() in methods:
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                req = func.HttpRequest(method.upper(), self.public_base + path, headers=headers or {},
                                       params=params, route_params=match.groupdict(), body=body)
                return await user_function(req=req, client=self.client_binding())
        return func.HttpResponse("Not Found", status_code=404)

    async def _start_new(self, request: web.Request) -> web.Response:
        name, instance_id = request.match_info["name"], request.match_info["instance_id"]
        if name not in self.orchestrators:
            return web.json_response({"ExceptionMessage": f"The function '{name}' doesn't exist."}, status=400)
        payload = await request.json() if request.can_read_body else None
        self._note_payload(payload)
        self.instances[instance_id] = Instance(instance_id, name, payload)
        return web.json_response({"id": instance_id}, status=202)

    async def _get_status(self, request: web.Request) -> web.Response:
        instance = self.instances.get(request.match_info["instance_id"])
        if instance is None:
            return web.Response(status=404)
        show_input = request.query.get("showInput", "").lower() == "true"
        status = 200 if instance.runtime_status in TERMINAL else 202
        return web.json_response(instance.status_json(show_input), status=status)

    async def _terminate(self, request: web.Request) -> web.Response:
        instance = self.instances.get(request.match_info["instance_id"])
        if instance is None:
            return web.Response(status=404)
        if instance.runtime_status in TERMINAL:
            return web.Response(status=410)
        instance.runtime_status, instance.output = "Terminated", request.query.get("reason", "")
        instance.last_updated_time = _now()
        return web.Response(status=202)

    def _note_payload(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.payloads.append(text)
        self.largest_payload = max(self.largest_payload, len(text))

    async def run_all(self) -> None:
        """Run every pending or running instance to its end."""
        for instance_id, instance in list(self.instances.items()):
            if instance.runtime_status not in TERMINAL:
                await self.run(instance_id)

    async def run(self, instance_id: str) -> Instance:
        """Drive one instance through all its generations until it completes, fails or is terminated."""
        instance = self.instances[instance_id]
        while instance.runtime_status not in TERMINAL:
            instance.runtime_status = "Running"
            await self._run_generation(instance)
        return instance

    def _replay(self, instance: Instance, history: List[Dict[str, Any]]) -> Dict[str, Any]:
        last_start = max(i for i, e in enumerate(history) if e["EventType"] == ORCHESTRATOR_STARTED)
        for i, event in enumerate(history):
            event["IsPlayed"] = i < last_start
        context = json.dumps({"history": history, "instanceId": instance.instance_id, "input": instance.input,
                              "isReplaying": False, "parentInstanceId": None,
                              "upperSchemaVersion": 1, "upperSchemaVersionNew": 2})
        started = time.perf_counter()
        try:
            return json.loads(self.orchestrators[instance.name](context))
        except Exception as error:  # the SDK's out-of-proc failure protocol
            message, _, state = str(error).partition(OUT_OF_PROC_MARKER)
            result = json.loads(state) if state else {}
            result["failure"] = f"Orchestrator function '{instance.name}' failed: {message}"
            return result
        finally:
            instance.replay_seconds += time.perf_counter() - started

    async def _run_generation(self, instance: Instance) -> None:
        history = [_event(ORCHESTRATOR_STARTED), _event(EXECUTION_STARTED, Name=instance.name, Input=instance.input,
                                                        Version="")]
        pending: Dict[int, _ScheduledTask] = {}
        next_id = scheduled = 0
        while instance.runtime_status == "Running":
            state = self._replay(instance, history)
            instance.longest_history = max(instance.longest_history, len(history))
            if "customStatus" in state:
                self._note_payload(state["customStatus"])
                instance.custom_status = state["customStatus"]
            instance.last_updated_time = _now()
            if "failure" in state:
                instance.runtime_status, instance.output = "Failed", state["failure"]
                return
            actions = _flatten(state.get("actions", []))
            for action in actions[scheduled:]:
                if action["actionType"] == CONTINUE_AS_NEW:
                    self._note_payload(action["input"])
                    instance.input, instance.created_time = action["input"], _now()
                    instance.generations += 1
                    instance.runtime_status = "ContinuedAsNew"
                    return
                if action["actionType"] not in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
                    raise NotImplementedError(f"the host stand-in does not run action {action}")
                pending[next_id] = _ScheduledTask(action["functionName"], action["input"], action.get("retryOptions"))
                history.append(_event(TASK_SCHEDULED, next_id, Name=action["functionName"], Input=action["input"]))
                next_id += 1
            scheduled = len(actions)
            if state.get("isDone"):
                instance.runtime_status, instance.output = "Completed", state.get("output")
                return
            if not pending:
                raise RuntimeError("the orchestrator waits on nothing the host stand-in can deliver")
            history.append(_event(ORCHESTRATOR_COMPLETED))
            round_ids = sorted(pending)
            outcomes = await asyncio.gather(*(self._invoke(pending[i]) for i in round_ids))
            if instance.runtime_status != "Running":
                return
            history.append(_event(ORCHESTRATOR_STARTED))
            for task_id, (ok, value) in zip(round_ids, outcomes):
                task = pending.pop(task_id)
                if ok:
                    history.append(_event(TASK_COMPLETED, TaskScheduledId=task_id, Result=value))
                    continue
                history.append(_event(TASK_FAILED, TaskScheduledId=task_id, Reason=value[0], Details=value[1]))
                if task.retry:
                    history.append(_event(TIMER_CREATED, next_id, FireAt=_now()))
                    history.append(_event(TIMER_FIRED, TimerId=next_id, FireAt=_now()))
                    next_id += 1
                    if task.attempt < task.retry["maxNumberOfAttempts"]:
                        pending[next_id] = _ScheduledTask(task.name, task.input, task.retry, task.attempt + 1)
                        history.append(_event(TASK_SCHEDULED, next_id, Name=task.name, Input=task.input))
                        next_id += 1

    async def _invoke(self, task: _ScheduledTask) -> tuple:
        user_function, parameter = self.activities[task.name]
        self._note_payload(task.input)
        argument = json.loads(task.input)
        try:
            if self.before_activity:
                hooked = self.before_activity(task.name, argument, task.attempt)
                if asyncio.iscoroutine(hooked):
                    await hooked
            result = user_function(**{parameter: argument})
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as error:
            return False, (f"Activity function '{task.name}' failed: {type(error).__name__}: {error}",
                           traceback.format_exc())
        output = json.dumps(result)
        self._note_payload(output)
        return True, output
