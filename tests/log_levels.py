"""Turning the app's detailed logs on for one test, as EXPORT_DETAILED_LOGS=true does when the app starts."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from shared.log_setup import configure_logging


@contextmanager
def detailed_logs() -> Iterator[None]:
    """Within the block the app logs as with EXPORT_DETAILED_LOGS=true; afterwards as the environment says again."""
    saved = os.environ.get("EXPORT_DETAILED_LOGS")
    os.environ["EXPORT_DETAILED_LOGS"] = "true"
    assert configure_logging() is True
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("EXPORT_DETAILED_LOGS")
        else:
            os.environ["EXPORT_DETAILED_LOGS"] = saved
        configure_logging()
