"""The settings a command reads beside the app: the environment over local.settings.json's Values."""
import base64
import json
import subprocess
import sys
from pathlib import Path

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


def _run_local_settings_step(folder):
    """Run the step of scripts/run-local that writes local.settings.json (from `new_key()` to its `fi`) in `folder`."""
    root = Path(__file__).resolve().parents[2]
    lines = (root / "scripts" / "run-local").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("new_key()"))
    end = next(i for i in range(start, len(lines)) if lines[i] == "fi")
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (folder / "local.settings.sample.json").write_bytes((root / "local.settings.sample.json").read_bytes())
    return subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines[start:end + 1])], cwd=folder,
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_run_local_writes_independent_sealing_and_deidentification_keys(tmp_path):
    assert "Created local.settings.json" in _run_local_settings_step(tmp_path)
    values = json.loads((tmp_path / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    sealing, deid = values["EXPORT_SEALING_KEY"], values["EXPORT_DEID_KEY"]
    assert len(base64.b64decode(sealing, validate=True)) == len(base64.b64decode(deid, validate=True)) == 32
    assert sealing != deid
    assert "REPLACE-WITH" not in json.dumps(values)


def test_run_local_keeps_an_existing_file_and_says_when_it_lacks_the_deidentification_key(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"EXPORT_SEALING_KEY": "kept"}}), encoding="utf-8")
    said = _run_local_settings_step(tmp_path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"Values": {"EXPORT_SEALING_KEY": "kept"}}
    assert said.startswith("local.settings.json has no EXPORT_DEID_KEY: de-identified exports will answer 500")
