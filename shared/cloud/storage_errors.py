"""How the service reads Azure Storage errors: their code, their status in words, and which are the caller's."""
from __future__ import annotations

from typing import Any

from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError)

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


class _Answer:
    """The parts of an HTTP answer an HttpResponseError's readers use (status, reason, headers)."""

    def __init__(self, status: int, reason: str, headers: Any):
        self.status_code, self.reason, self.headers = status, reason, headers

    def text(self) -> str:
        """No body text: storage errors are read from their headers."""
        return ""


def response_error(status: int, reason: str, headers: Any) -> HttpResponseError:
    """The SDK's exception for a storage error answer, with `status_code`, `error_code` and `response.headers`."""
    code = headers.get("x-ms-error-code", "")
    kind = {401: ClientAuthenticationError, 403: ClientAuthenticationError, 404: ResourceNotFoundError,
            409: ResourceExistsError}.get(status, HttpResponseError)
    error = kind(message=f"Azure Storage answered {status} {code}".strip())
    error.status_code, error.reason, error.error_code = status, reason, code
    error.response = _Answer(status, reason, headers)
    return error
