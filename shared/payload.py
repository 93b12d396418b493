"""A base for the small JSON-able values that orchestrators and activities exchange, written once for both ends."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict


class Payload:
    """Mixin for frozen dataclasses: `to_dict()` for the durable layer, `from_dict()` to read it back."""

    def to_dict(self) -> Dict[str, Any]:
        """This value as plain JSON-able dicts, lists and scalars."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        """Rebuild the value from `to_dict()` output, including nested payloads."""
        hints = typing.get_type_hints(cls)
        values = {f.name: _revive(hints[f.name], data[f.name])
                  for f in dataclasses.fields(cls) if f.name in data}  # type: ignore[arg-type]
        return cls(**values)


def _revive(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin is typing.Union:
        return _revive(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_revive(args[0], v) for v in value)
    if isinstance(hint, type) and issubclass(hint, Payload):
        return hint.from_dict(value)
    return value
