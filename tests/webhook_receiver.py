"""A real webhook receiver on 127.0.0.1 for the tests: it checks each event's Standard Webhooks signature itself."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web


@dataclass
class Delivery:
    """One request the receiver got: its headers, raw body, parsed event, and whether its signature verified."""

    headers: Dict[str, str]
    body: bytes
    event: Any
    signature_valid: Optional[bool]


@dataclass
class WebhookReceiver:
    """Answers each POST with the next of `answers` (then the last one again), recording every delivery.

    With `secret` (the `whsec_…` text) it verifies `webhook-signature` as the Standard Webhooks spec says: base64
    HMAC-SHA256, keyed by the secret's base64-decoded bytes, of `<webhook-id>.<webhook-timestamp>.<body>`, with the
    timestamp within five minutes of now.
    """

    secret: Optional[str] = None
    answers: List[int] = field(default_factory=lambda: [204])
    deliveries: List[Delivery] = field(default_factory=list)
    port: int = 0

    def verify(self, headers: Dict[str, str], body: bytes) -> Optional[bool]:
        """Whether the delivery's signature is right (None when the receiver has no secret)."""
        if self.secret is None:
            return None
        key = base64.b64decode(self.secret.split("_", 1)[1])
        message_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
        expected = base64.b64encode(hmac.new(key, f"{message_id}.{stamp}.".encode() + body,
                                             hashlib.sha256).digest()).decode()
        offered = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split()
                   if part.startswith("v1,")]
        fresh = abs(time.time() - int(stamp)) < 300
        return fresh and any(hmac.compare_digest(expected, signature) for signature in offered)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        self.deliveries.append(Delivery(headers, body, event, self.verify(headers, body)))
        status = self.answers[min(len(self.deliveries), len(self.answers)) - 1]
        return web.Response(status=status)

    async def start(self) -> "WebhookReceiver":
        """Listen on a free loopback port; `url` is where to send events."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """The receiver's endpoint."""
        return f"http://127.0.0.1:{self.port}/hooks/export?code=receiver-key"

    async def stop(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()
