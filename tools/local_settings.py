"""The app settings a command sees beside the app: the environment first, then local.settings.json's Values."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping

from shared.errors import ServiceConfigurationError

LOCAL_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "local.settings.json"


@dataclass(frozen=True)
class AppSettings:
    """Setting values by name, and where they came from (for messages)."""

    values: Dict[str, str]
    source: str


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def read_app_settings(path: Path = LOCAL_SETTINGS_FILE, env: Mapping[str, str] = os.environ) -> AppSettings:
    """The environment's settings over the `Values` of `path` (what `func start` gives the app), if that file exists."""
    if not path.is_file():
        return AppSettings(dict(env), "the environment")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ServiceConfigurationError(f"{path} cannot be read as JSON: {error}") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ServiceConfigurationError(f"{path} has no \"Values\" object holding the app settings.")
    merged = {str(name): _text(value) for name, value in values.items() if value is not None}
    merged.update(env)
    return AppSettings(merged, f"the environment and {path.name}")
