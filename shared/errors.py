"""The exceptions the domain raises for callers and operators."""


class InvalidRequestError(Exception):
    """A request the caller must fix; the message names the field and value and becomes a 400."""


class ServiceConfigurationError(Exception):
    """An app setting is missing or malformed; the message names the setting for the operator."""
