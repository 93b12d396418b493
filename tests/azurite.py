"""Starts and stops a real Azurite (the storage emulator from npm) on free loopback ports for the tests."""
from __future__ import annotations

import datetime
import os
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
AZURITE = REPO / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port_triple() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        sockets: List[socket.socket] = []
        try:
            for port in (base, base + 1, base + 2):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no three consecutive free loopback ports")


def write_self_signed_certificate(folder: str) -> tuple:
    """A certificate and key for 127.0.0.1, valid for a day, written as PEM files; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class Azurite:
    """One Azurite process: in memory by default, or persisted in `location` so it can be restarted on its data.

    With `oauth=True` it serves HTTPS with a self-signed certificate (`certificate`) and accepts bearer tokens.
    """

    def __init__(self, location: Optional[str] = None, oauth: bool = False):
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `npm ci` in the repository first (scripts/test does).")
        self.port = _free_port_triple()
        self.location = location
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        self.certificate: Optional[str] = None
        self._tls: List[str] = []
        if oauth:
            self.certificate, key = write_self_signed_certificate(self._workdir)
            self._tls = ["--oauth", "basic", "--cert", self.certificate, "--key", key]
        self._process: Optional[subprocess.Popen] = None

    @property
    def blob_endpoint(self) -> str:
        """The account's blob endpoint, path-style."""
        scheme = "https" if self.certificate else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A connection string for the well-known emulator account."""
        scheme = "https" if self.certificate else "http"
        return (f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    def start(self) -> "Azurite":
        """Start the process and wait until the blob port answers."""
        storage = ["--location", self.location] if self.location else ["--inMemoryPersistence"]
        self._process = subprocess.Popen(
            [str(AZURITE), *storage, *self._tls, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
             "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--queuePort", str(self.port + 1),
             "--tablePort", str(self.port + 2)],
            cwd=self._workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Azurite exited: {self._process.stderr.read().decode()[:2000]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("Azurite did not start within 30 s")

    def cpu_seconds(self) -> float:
        """The CPU time (user + system) the Azurite process has used so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the process (its in-memory data goes with it)."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def close(self) -> None:
        """Stop and remove the working folder."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
