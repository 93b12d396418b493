"""A stand-in for the Functions host and its Durable extension, driving the app's real functions as the host does.

It indexes `function_app.app`, routes HTTP requests to the HTTP functions with a durable client binding, answers
the management API the SDK client calls (`orchestrators/{name}/{id}`, `instances/{id}`, `.../terminate`), and runs
orchestrations by replaying the real orchestrator through the SDK as the extension does (tests/durable_episodes.py):
each completion, or each batch of completions already arrived, is one episode, so `task_all` fails as soon as one
task fails while its siblings still run; a failed attempt of a retried activity waits its retry interval (scaled by
`retry_interval_scale`) on a TimerCreated/TimerFired pair; at most `max_concurrent_activities` activities run at
once across the host (host.json's `maxConcurrentActivityFunctions` unless overridden); continue-as-new starts a new
history and, as on the Azure Storage backend, resets the instance's createdTime. Terminating an instance is queued:
the call answers 202 at once, and the instance becomes Terminated (the reason as output) when its runner next reads
its queue; activities already running finish, their results are dropped and nothing more is scheduled.
Terminating an ended instance answers 410. `run()` returns once the instance has ended and every activity it
started has finished, so a test sees no work still running behind it.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
from aiohttp import web

from tests.durable_episodes import (
    ORCHESTRATOR_STARTED,
    ActivitySlots,
    Generation,
    Mailbox,
    ScheduledTask,
    host_json_activity_limit,
    timestamp,
)

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}
DEFAULT_RETRY_INTERVAL_SCALE = 0.001  # the app's 5 s first retry interval becomes 5 ms
ActivityHook = Callable[[str, Dict[str, Any], int], Optional[Awaitable[None]]]


@dataclass
class Instance:
    """One orchestration instance as the extension tracks it."""

    instance_id: str
    name: str
    input: Optional[str]
    runtime_status: str = "Pending"
    custom_status: Any = None
    output: Any = None
    created_time: str = field(default_factory=timestamp)
    last_updated_time: str = field(default_factory=timestamp)
    generations: int = 0
    longest_history: int = 0
    replay_seconds: float = 0.0
    histories: List[List[Dict[str, Any]]] = field(default_factory=list, repr=False)
    mailbox: Mailbox = field(default_factory=Mailbox, repr=False, compare=False)

    def status_json(self, show_input: bool) -> Dict[str, Any]:
        """The body of `GET instances/{id}`."""
        body = {"name": self.name, "instanceId": self.instance_id, "runtimeStatus": self.runtime_status,
                "customStatus": self.custom_status, "output": self.output, "createdTime": self.created_time,
                "lastUpdatedTime": self.last_updated_time}
        if show_input:
            body["input"] = self.input
        return body


@dataclass(frozen=True)
class _Route:
    """One HTTP function's route as the host matches it: `{name}` is one segment, `{*name}` the rest of the path,
    and a `:regex(...)` constraint must match the value (case-insensitively, as ASP.NET routing applies it)."""

    name: str
    pattern: re.Pattern
    constraints: Dict[str, re.Pattern]
    methods: frozenset
    function: Callable
    takes_client: bool

    def match(self, method: str, path: str) -> Optional[Dict[str, str]]:
        found = self.pattern.match(path)
        if not found or method not in self.methods:
            return None
        values = found.groupdict()
        ok = all(rule.search(values[name]) for name, rule in self.constraints.items())
        return values if ok else None


def _route(name: str, template: str, methods: frozenset, function: Callable, takes_client: bool) -> _Route:
    constraints: Dict[str, re.Pattern] = {}

    def parameter(found: re.Match) -> str:
        rest, parameter_name, rule = found.group(1) == "*", found.group(2), found.group(3)
        if rule and rule.startswith("regex(") and rule.endswith(")"):
            constraints[parameter_name] = re.compile(rule[len("regex("):-1], re.IGNORECASE)
        return f"(?P<{parameter_name}>{'.*' if rest else '[^/]+'})"
    pattern = re.sub(r"\{(\*?)(\w+)(?::(regex\(.*\)|[^}]*))?\}", parameter, template)
    return _Route(name, re.compile("^" + pattern + "$"), constraints, methods, function, takes_client)


class DurableHost:
    """Runs the app's functions: HTTP routing, the durable client's management API, and orchestration replay."""

    def __init__(self, functions: List[Any], public_base: str = "http://localhost:7071",
                 max_concurrent_activities: Optional[int] = None):
        self.public_base = public_base
        self.instances: Dict[str, Instance] = {}
        self.orchestrators: Dict[str, Callable] = {}
        self.activities: Dict[str, tuple] = {}
        self.routes: List[tuple] = []
        self.before_activity: Optional[ActivityHook] = None
        self.largest_payload = 0
        self.payloads: List[str] = []
        self.retry_interval_scale = DEFAULT_RETRY_INTERVAL_SCALE
        self.slots = ActivitySlots(max_concurrent_activities or host_json_activity_limit())
        for function in functions:
            bindings = {b.type: b for b in function.get_bindings()}
            name, user_function = function.get_function_name(), function.get_user_function()
            if "orchestrationTrigger" in bindings:
                self.orchestrators[name] = user_function
            elif "activityTrigger" in bindings:
                self.activities[name] = (user_function, bindings["activityTrigger"].name)
            elif "httpTrigger" in bindings:
                trigger = bindings["httpTrigger"]
                methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.methods)
                self.routes.append(_route(name, trigger.route, methods, user_function, "durableClient" in bindings))
        self.routes.sort(key=lambda route: route.name)  # the host tries routes in function-name order
        self._runner: Optional[web.AppRunner] = None
        self.port = 0

    @property
    def max_concurrent_activities(self) -> int:
        """How many activities may run at once across the host."""
        return self.slots.limit

    @max_concurrent_activities.setter
    def max_concurrent_activities(self, limit: int) -> None:
        self.slots.set_limit(limit)

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
        for route in self.routes:
            values = route.match(method.upper(), url.path.lstrip("/"))
            if values is not None:
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                req = func.HttpRequest(method.upper(), self.public_base + path, headers=headers or {},
                                       params=params, route_params=values, body=body)
                extra = {"client": self.client_binding()} if route.takes_client else {}
                return await route.function(req=req, **extra)
        return func.HttpResponse("Not Found", status_code=404)

    async def _start_new(self, request: web.Request) -> web.Response:
        name, instance_id = request.match_info["name"], request.match_info["instance_id"]
        if name not in self.orchestrators:
            return web.json_response({"ExceptionMessage": f"The function '{name}' doesn't exist."}, status=400)
        payload = await request.json() if request.can_read_body else None
        self.note_payload(payload)
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
        instance.mailbox.terminate(request.query.get("reason", ""))
        return web.Response(status=202)

    def terminate_now(self, instance: Instance) -> None:
        """Apply an instance's queued termination, as its runner does when it reads the queue."""
        instance.runtime_status, instance.output = "Terminated", instance.mailbox.termination
        instance.last_updated_time = timestamp()

    def note_payload(self, payload: Any) -> None:
        """Record a payload that crosses the extension (input, output, custom status), and the largest size."""
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
        mailbox = instance.mailbox
        try:
            while instance.runtime_status not in TERMINAL:
                if mailbox.termination is not None:
                    self.terminate_now(instance)
                    break
                instance.runtime_status = "Running"
                await Generation(self, instance).run()
        finally:
            for timer in list(mailbox.timers):
                timer.cancel()
            while mailbox.activities:  # running activities finish; their results are dropped
                await asyncio.gather(*list(mailbox.activities), return_exceptions=True)
            mailbox.messages.clear()
        return instance

    def replay(self, instance: Instance, history: List[Dict[str, Any]]) -> Dict[str, Any]:
        """One episode: the orchestrator replayed over `history`, as the OrchestratorState JSON it returns."""
        last_start = max(i for i, e in enumerate(history) if e["EventType"] == ORCHESTRATOR_STARTED)
        for i, event in enumerate(history):
            event["IsPlayed"] = i < last_start
        instance.longest_history = max(instance.longest_history, len(history))
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

    async def invoke(self, task: ScheduledTask) -> tuple:
        """Run one activity attempt (the `before_activity` hook first); (True, JSON result) or (False, failure)."""
        self.note_payload(task.input)
        argument = json.loads(task.input)
        try:
            user_function, parameter = self.activities[task.name]
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
        self.note_payload(output)
        return True, output
