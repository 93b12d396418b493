"""The settings a command reads beside the app: the environment over local.settings.json's Values."""
import json

import pytest

from shared.errors import ServiceConfigurationError
from tools.local_settings import read_app_settings


def test_values_are_text_and_the_environment_wins(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "file", "B": "file", "BATCH": 100, "FLAG": True, "UNSET": None}}))
    settings = read_app_settings(path, {"B": "env", "C": "env"})
    assert (settings.values, settings.source) == (
        {"A": "file", "B": "env", "BATCH": "100", "FLAG": "true", "C": "env"}, "the environment and local.settings.json")


def test_without_the_file_only_the_environment_counts(tmp_path):
    settings = read_app_settings(tmp_path / "local.settings.json", {"C": "env"})
    assert (settings.values, settings.source) == ({"C": "env"}, "the environment")


def test_a_file_without_values_is_named(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False}))
    with pytest.raises(ServiceConfigurationError) as error:
        read_app_settings(path, {})
    assert str(error.value) == f"{path} has no \"Values\" object holding the app settings."
