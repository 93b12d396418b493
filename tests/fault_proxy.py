"""A loopback HTTP proxy in front of a real server that fails or stalls chosen requests and records them all.

A stalled request is held before it is forwarded. Like Azure Storage, the proxy honours a request's `timeout`
query parameter: a request held longer than that is answered `500 OperationTimedOut` and never forwarded.
"""
from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class _Fault:
    """What to do with the next request matching `method` and `path_part`: fail it, or hold it `stall` seconds."""

    method: Optional[str]
    path_part: str
    status: int = 0
    headers: Optional[Dict[str, str]] = None
    stall: float = 0.0
    drop: bool = False
    body: str = "injected failure"
    header: Optional[str] = None

    def matches(self, request: web.Request) -> bool:
        return ((self.method is None or request.method == self.method) and self.path_part in request.path
                and (self.header is None or self.header in request.headers))


class FaultProxy:
    """Forwards every request to `target`, except those `fail_next` or `stall_next` chose."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.requests: List[Dict[str, str]] = []
        self.timed_out: List[str] = []
        self.stalled = asyncio.Event()
        self._faults: List[_Fault] = []
        self._runner: Optional[web.AppRunner] = None
        self._client: Optional[aiohttp.ClientSession] = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    @property
    def url(self) -> str:
        """The proxy's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int, headers: Optional[Dict[str, str]] = None,
                  method: Optional[str] = None, path_part: str = "", body: str = "injected failure",
                  header: Optional[str] = None) -> None:
        """Answer the next `count` matching requests (those carrying `header`, if given) with `status` (and
        `headers`, `body`) instead of forwarding them."""
        self._faults.extend(_Fault(method, path_part, status, dict(headers or {}), body=body, header=header)
                            for _ in range(count))

    def drop_next(self, count: int, method: Optional[str] = None, header: Optional[str] = None) -> None:
        """Close the connection of the next `count` matching requests without answering."""
        self._faults.extend(_Fault(method, "", drop=True, header=header) for _ in range(count))

    def stall_next(self, count: int, seconds: float, method: Optional[str] = None, path_part: str = "") -> None:
        """Hold the next `count` matching requests for `seconds` before forwarding them (see the module's note)."""
        self._faults.extend(_Fault(method, path_part, stall=seconds) for _ in range(count))

    async def start(self) -> "FaultProxy":
        """Serve on the current event loop."""
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Stop serving and close the upstream session."""
        await self._runner.cleanup()
        await self._client.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"method": request.method, "path": request.path_qs,
                              "authorization": request.headers.get("Authorization", "")})
        fault = next((f for f in self._faults if f.matches(request)), None)
        if fault is not None:
            self._faults.remove(fault)
            if fault.drop:  # the connection ends with no answer at all
                request.transport.close()
                raise ConnectionResetError("dropped by the fault proxy")
            if fault.status:
                return web.Response(status=fault.status, headers=fault.headers, body=fault.body.encode())
            body = await request.read()
            self.stalled.set()
            limit = request.query.get("timeout", "")
            if limit.isdigit() and int(limit) < fault.stall:
                await asyncio.sleep(int(limit))
                self.timed_out.append(request.path)
                return web.Response(status=500, headers={"x-ms-error-code": "OperationTimedOut"},
                                    text="Operation could not be completed within the specified time.")
            await asyncio.sleep(fault.stall)
            try:
                return await self._forward(request, body)
            except ConnectionResetError:  # the client gave up waiting: as a server would, drop the answer
                return web.Response(status=499)
        return await self._forward(request, await request.read())

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(request.method, self.target + request.path_qs, headers=headers, data=body,
                                        skip_auto_headers={"Content-Type"}) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


# (request, the answer's JSON) -> (the JSON to send instead, headers to add)
JsonEdit = Callable[[web.Request, Any], Tuple[Any, Dict[str, str]]]


class EditingProxy(FaultProxy):
    """A FaultProxy that can also rewrite the JSON answers to chosen requests: drop rows, strip tags, add a Warning."""

    def __init__(self, target: str):
        super().__init__(target)
        self._edits: List[Tuple[str, JsonEdit]] = []

    def edit_json(self, path_part: str, edit: JsonEdit) -> None:
        """From now on, pass every JSON answer to a request whose path contains `path_part` through `edit` (after the
        edits added before it); the proxy asks the server for an uncompressed answer and sends the new one whole."""
        self._edits.append((path_part, edit))

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        edits = [edit for part, edit in self._edits if part in request.path]
        if not edits:
            return await super()._forward(request, body)
        headers = {**{k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP},
                   "Accept-Encoding": "identity"}
        async with self._client.request(request.method, self.target + request.path_qs, headers=headers,
                                        data=body) as upstream:
            content, added = await upstream.read(), {}
            answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if upstream.status == 200 and "json" in upstream.headers.get("Content-Type", ""):
                value = json.loads(content or b"null")
                for edit in edits:
                    value, more = edit(request, value)
                    added.update(more)
                content = json.dumps(value).encode()
            return web.Response(status=upstream.status, body=content, headers={**answer, **added})
