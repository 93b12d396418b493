"""Keeps pydicom from logging or warning about an instance's values (its messages quote them) while we parse."""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

_PYDICOM_LOGGER = logging.getLogger("pydicom")


def _drop(record: logging.LogRecord) -> bool:
    return False


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Within the block, pydicom's warnings are ignored and its log records dropped (call no await inside)."""
    _PYDICOM_LOGGER.addFilter(_drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _PYDICOM_LOGGER.removeFilter(_drop)
