"""How the service reads Azure Storage errors: their code, their status in words, and which are the caller's."""
from __future__ import annotations

from azure.core.exceptions import HttpResponseError

TRANSIENT_CLIENT_STATUSES = {408, 429}


def error_code(error: BaseException) -> str:
    """The storage error code (`ContainerNotFound`, ...), or "" when the answer carried none."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def status_text(error: BaseException) -> str:
    """`<status> <code>` for messages, or the exception's type when there was no HTTP answer."""
    status = getattr(error, "status_code", None)
    return f"{status} {error_code(error)}".strip() if status else type(error).__name__


def is_client_error(error: BaseException) -> bool:
    """Whether storage answered with a 4xx that retrying will not change (not a timeout or throttling)."""
    if not isinstance(error, HttpResponseError):
        return False
    status = error.status_code or 0
    return 400 <= status < 500 and status not in TRANSIENT_CLIENT_STATUSES
