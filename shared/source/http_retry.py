"""How the service retries an HTTP request that was throttled (429), failed (5xx) or never answered."""
from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request refused with 429/5xx or a connection error is tried, and how long to wait between tries.

    The wait doubles from `first_delay`; a Retry-After answer is honoured instead; both are capped at `longest_delay`.
    """

    attempts: int = 4
    first_delay: float = 0.5
    longest_delay: float = 20.0

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        wanted = retry_after if retry_after is not None else self.first_delay * 2 ** (attempt - 1)
        return min(max(wanted, 0.0), self.longest_delay)


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A Retry-After header (seconds or an HTTP date) as seconds from now, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
