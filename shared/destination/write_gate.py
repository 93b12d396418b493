"""Every request to a destination passes one gate: the running step's permission check, and a server-side timeout."""
from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Optional

# Azure Storage aborts a request still unfinished after this many seconds (its `timeout` parameter) instead of
# completing it later, so a write sent now has taken effect, or never will, this long from now.
WRITE_TIMEOUT_SECONDS = 60

_TIMEOUT_PARAMETER = re.compile(r"([?&])timeout=([^&#]*)")
_permission: ContextVar[Optional[Callable[[], None]]] = ContextVar("destination_write_permission", default=None)


@contextmanager
def writes_permitted_by(check: Callable[[], None]) -> Iterator[None]:
    """Within the block (and the tasks it starts), every destination request first calls `check`, which may raise."""
    token = _permission.set(check)
    try:
        yield
    finally:
        _permission.reset(token)


def with_server_timeout(url: str, seconds: int) -> str:
    """`url` with a `timeout` query parameter of at most `seconds` (the rest of the URL untouched)."""
    given = _TIMEOUT_PARAMETER.search(url)
    if given is None:
        return f"{url}{'&' if '?' in url else '?'}timeout={seconds}"
    if given.group(2).isdigit() and int(given.group(2)) <= seconds:
        return url
    return f"{url[:given.start(2)]}{seconds}{url[given.end(2):]}"


def check_write_permission() -> None:
    """Apply the running step's check (it raises when the step may no longer write); run before every attempt."""
    check = _permission.get()
    if check is not None:
        check()


def gate_request(request: Any) -> None:
    """The storage SDK's `raw_request_hook`, run before each attempt of each request (retries included)."""
    check_write_permission()
    http = request.http_request
    http.url = with_server_timeout(http.url, WRITE_TIMEOUT_SECONDS)
