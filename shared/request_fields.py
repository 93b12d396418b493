"""How the API reads a JSON object of a request: names are case-insensitive, and a misspelt name is pointed out."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, Iterator, Mapping, Optional

_CLOSE_ENOUGH = 0.8  # difflib ratio: one transposed or wrong letter in a name of eight or more letters


def the_field(path: str) -> str:
    """The words every message about a request field starts with: `The field '<path>'`."""
    return f"The field '{path}'"


class RequestObject(Mapping[str, Any]):
    """A JSON object's properties looked up by lower-cased name, remembering how the caller spelt each one."""

    def __init__(self, value: Mapping[str, Any]):
        self._values = {str(name).lower(): item for name, item in value.items()}
        self._spellings = {str(name).lower(): str(name) for name in value}

    def __getitem__(self, name: str) -> Any:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def misspelling_of(self, name: str, known: Iterable[str]) -> Optional[str]:
        """The caller's spelling of an unknown property that looks like `name`, if one does."""
        understood = {k.lower() for k in known}
        unknown = [k for k in self._values if k not in understood]
        close = difflib.get_close_matches(name.lower(), unknown, n=1, cutoff=_CLOSE_ENOUGH)
        return self._spellings[close[0]] if close else None

    def missing(self, path: str, known: Iterable[str]) -> str:
        """`The field '<path>' is missing`, with `(did you mean it for '<spelling>'?)` when a property looks like it."""
        spelling = self.misspelling_of(path.rsplit(".", 1)[-1], known)
        hint = f" (did you mean it for '{spelling}'?)" if spelling else ""
        return f"{the_field(path)} is missing{hint}"
