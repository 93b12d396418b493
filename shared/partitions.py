"""Data partitions of the DICOM store: the default one, and the rule for a name in `/partitions/{partition}/export`."""
from __future__ import annotations

import re

from shared.errors import InvalidRequestError, quote_value

DEFAULT_PARTITION = "Microsoft.Default"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def parse_partition(name: str) -> str:
    """The partition a route names (1–64 letters, digits, '.', '-', '_'); InvalidRequestError otherwise.

    The default partition's name is matched without regard to case and returned as `Microsoft.Default`.
    """
    if not _NAME.match(name):
        raise InvalidRequestError(
            f"The partition name {quote_value(name)} is not valid: a partition name is 1 to 64 letters, "
            "digits, '.', '-' and '_'.")
    return DEFAULT_PARTITION if name.lower() == DEFAULT_PARTITION.lower() else name


def is_default_partition(partition: str) -> bool:
    """Whether `partition` is the default one, whose data the unpartitioned routes and paths hold."""
    return partition == DEFAULT_PARTITION
