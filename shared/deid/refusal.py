"""The per-instance refusal: an instance this service will not de-identify, with a reason free of identifying data."""


class NotDeidentifiableError(Exception):
    """The instance cannot be de-identified as asked; the message says why, for errors.log, and names no value of
    the instance."""
