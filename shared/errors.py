"""The exceptions the domain raises for callers and operators, and how their messages quote values."""
import json
from typing import Any


class InvalidRequestError(Exception):
    """A request the caller must fix; the message names the field and value and becomes a 400."""


class ServiceConfigurationError(Exception):
    """An app setting is missing or malformed; the message names the setting for the operator."""


def quote_value(value: Any) -> str:
    """A short rendering of a request value for a message: JSON for scalars, "an object" or "a list" otherwise."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ExportFailedError(Exception):
    """Raised by the orchestrator to fail an export with a message written for the caller."""

    PREFIX = "Export failed: "

    def __init__(self, message: str):
        super().__init__(self.PREFIX + message)
