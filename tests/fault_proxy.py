"""A loopback HTTP proxy in front of a real server that fails chosen requests (503, 429, ...) and records them all."""
from __future__ import annotations

import socket
from typing import Dict, List, Optional

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """Forwards every request to `target`, except that the next `fail_next(...)` requests get a canned failure."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.requests: List[Dict[str, str]] = []
        self._failures: List[tuple] = []
        self._runner: Optional[web.AppRunner] = None
        self._client: Optional[aiohttp.ClientSession] = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    @property
    def url(self) -> str:
        """The proxy's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int, headers: Optional[Dict[str, str]] = None) -> None:
        """Answer the next `count` requests with `status` (and `headers`) instead of forwarding them."""
        self._failures.extend([(status, dict(headers or {}))] * count)

    async def start(self) -> "FaultProxy":
        """Serve on the current event loop."""
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
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
        if self._failures:
            status, headers = self._failures.pop(0)
            return web.Response(status=status, headers=headers, text="injected failure")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(request.method, self.target + request.path_qs, headers=headers,
                                        data=await request.read()) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
