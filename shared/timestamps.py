"""UTC timestamps in the one ISO 8601 form the API and the error log use."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def utc_iso(moment: Optional[datetime] = None) -> str:
    """`moment` (default now) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`; naive datetimes are taken as UTC."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
