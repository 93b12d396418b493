"""Starts and stops a real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) on a free loopback port for the tests."""
from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pydicom

from tests.dicom_samples import make_instance

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
INSTALL_HINT = "apt-get install -y orthanc orthanc-dicomweb"


def orthanc_missing() -> Optional[str]:
    """Why Orthanc cannot run here (binary or DICOMweb plugin missing), or None when it can."""
    if not Path(ORTHANC).exists():
        return f"the Orthanc binary is not installed ({INSTALL_HINT})"
    if not Path(DICOMWEB_PLUGIN).exists():
        return f"the Orthanc DICOMweb plugin {DICOMWEB_PLUGIN} is not installed ({INSTALL_HINT})"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Orthanc:
    """One Orthanc process with its storage in a temporary folder and DICOMweb at `/dicom-web/`.

    With `users` ({name: password}) it requires HTTP basic authentication for every request. `settings` adds or
    overrides configuration options, e.g. `{"LimitFindInstances": 5, "LimitFindResults": 5}`.
    """

    def __init__(self, users: Optional[Dict[str, str]] = None, settings: Optional[Dict[str, Any]] = None):
        self.port = _free_port()
        self.users = dict(users or {})
        self.settings = dict(settings or {})
        self._workdir = tempfile.mkdtemp(prefix="orthanc-")
        self._process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """The REST API root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        """The running process's id (benchmarks read its CPU time from /proc), or None when stopped."""
        return self._process.pid if self._process else None

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb service root, without a trailing slash."""
        return f"{self.url}/dicom-web"

    def _config(self) -> dict:
        config = {
            "Name": "export-tests", "HttpPort": self.port, "DicomServerEnabled": False,
            "RemoteAccessAllowed": False, "StorageDirectory": str(Path(self._workdir) / "storage"),
            "IndexDirectory": str(Path(self._workdir) / "storage"), "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "StableAge": 3600, "ConcurrentJobs": 1,
            "AuthenticationEnabled": bool(self.users),
        }
        if self.users:
            config["RegisteredUsers"] = self.users
        config.update(self.settings)
        return config

    def start(self) -> "Orthanc":
        """Write the configuration, start the process and wait until its REST API answers."""
        config_path = Path(self._workdir) / "config.json"
        config_path.write_text(json.dumps(self._config()))
        self._log = open(Path(self._workdir) / "orthanc.log", "wb")
        self._process = subprocess.Popen([ORTHANC, str(config_path)], cwd=self._workdir,
                                         stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {self.log_tail()}")
            try:
                self.request("GET", "/system")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not start within 30 s: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of Orthanc's own log, for failure messages."""
        return (Path(self._workdir) / "orthanc.log").read_bytes()[-2000:].decode(errors="replace")

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> bytes:
        """Call the REST API as the first registered user (if any); raise urllib's HTTPError for a non-2xx answer."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if self.users:
            user, password = next(iter(self.users.items()))
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        if body is not None:
            request.add_header("Content-Type", "application/dicom")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def upload(self, data: bytes) -> str:
        """Store one DICOM file (`POST /instances`) and return Orthanc's id for the instance."""
        return json.loads(self.request("POST", "/instances", data))["ID"]

    def upload_numbered(self, study: str, series: str, sop: str, instance_number: int,
                        series_number: int = 1) -> Tuple[str, bytes]:
        """Store `make_instance(study, series, sop)` with the given InstanceNumber and SeriesNumber; return Orthanc's
        id for it and the file's bytes."""
        dataset = pydicom.dcmread(io.BytesIO(make_instance(study, series, sop)))
        dataset.InstanceNumber, dataset.SeriesNumber = instance_number, series_number
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=True)
        return self.upload(out.getvalue()), out.getvalue()

    def stored_file(self, orthanc_id: str) -> bytes:
        """The file Orthanc keeps for an instance, byte for byte (`/instances/{id}/file`)."""
        return self.request("GET", f"/instances/{orthanc_id}/file")

    def delete(self, orthanc_id: str) -> None:
        """Delete one instance."""
        self.request("DELETE", f"/instances/{orthanc_id}")

    def stop(self) -> None:
        """Stop the process."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if getattr(self, "_log", None):
            self._log.close()

    def close(self) -> None:
        """Stop and remove the storage folder."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
