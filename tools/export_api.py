"""The export API as the command-line client calls it: one request at a time, with the function key in a header."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Optional

KEY_HEADER = "x-functions-key"


class ApiError(Exception):
    """The service did not answer (wrong URL, not running, network) or not as the API says; one line for the user."""


@dataclass(frozen=True)
class Answer:
    """One answer: its status code, its Retry-After (seconds, if given) and its body (parsed JSON, or text)."""

    status: int
    retry_after: Optional[float]
    body: Any

    def message(self) -> str:
        """The body as one line for the user: the service's plain-text message, or the JSON."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


def _answer(status: int, headers: Any, raw: bytes) -> Answer:
    text = raw.decode("utf-8", "replace")
    kind = (headers.get("Content-Type") or "").split(";", 1)[0].strip()
    retry = (headers.get("Retry-After") or "").strip()
    return Answer(status, float(retry) if retry.replace(".", "", 1).isdigit() else None,
                  json.loads(text) if kind == "application/json" and text else text)


@dataclass(frozen=True)
class ExportApi:
    """The service at `base_url` (e.g. https://<app>.azurewebsites.net), API version `version`, function key `key`."""

    base_url: str
    version: int = 2
    key: Optional[str] = None
    timeout: float = 100.0

    def url(self, path: str) -> str:
        """The URL of a path under the versioned API, such as `/export` or `/operations/<id>`."""
        return f"{self.base_url.rstrip('/')}/v{self.version}{path}"

    def call(self, method: str, url: str, body: Optional[Dict[str, Any]] = None) -> Answer:
        """Send one request and return its answer, whatever its status; ApiError when none came."""
        headers = {"Content-Type": "application/json", **({KEY_HEADER: self.key} if self.key else {})}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return _answer(error.code, error.headers, error.read())
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(f"cannot reach {url.split('?', 1)[0]}: {reason}") from None
