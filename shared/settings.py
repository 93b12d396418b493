"""The app settings the service reads, with their defaults; the README's settings table mirrors this module."""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Mapping, Optional

from shared.destination_allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist
from shared.errors import ServiceConfigurationError

DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCHES_IN_FLIGHT = 4
DEFAULT_COPIES_PER_BATCH = 8
DEFAULT_STORE_CONTAINER = "dicom"
ACTIVITY_ATTEMPTS = 4
ACTIVITY_FIRST_RETRY_MS = 5_000


def _whole_number(env: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ServiceConfigurationError(
            f"App setting {name} must be a whole number from 1 to {maximum}, not '{raw}'.")
    return int(raw)


@dataclass(frozen=True)
class ExportSettings:
    """How exports are batched and sealed, read from the app settings."""

    batch_size: int = DEFAULT_BATCH_SIZE
    batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT
    copies_per_batch: int = DEFAULT_COPIES_PER_BATCH
    sealing_key: Optional[bytes] = None
    identity_client_id: Optional[str] = None
    allowed_destinations: DestinationAllowlist = DEFAULT_ALLOWLIST

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "ExportSettings":
        """Read and check EXPORT_* settings; raise ServiceConfigurationError naming a malformed one."""
        return cls(
            batch_size=_whole_number(env, "EXPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE, 500),
            batches_in_flight=_whole_number(env, "EXPORT_BATCHES_IN_FLIGHT", DEFAULT_BATCHES_IN_FLIGHT, 16),
            copies_per_batch=_whole_number(env, "EXPORT_COPIES_PER_BATCH", DEFAULT_COPIES_PER_BATCH, 64),
            sealing_key=_sealing_key(env),
            identity_client_id=env.get("EXPORT_IDENTITY_CLIENT_ID") or None,
            allowed_destinations=_allowed_destinations(env),
        )

    def require_sealing_key(self) -> bytes:
        """The key that seals destination credentials; raise when EXPORT_SEALING_KEY is unset."""
        if self.sealing_key is None:
            raise ServiceConfigurationError(
                "App setting EXPORT_SEALING_KEY is not set; it must hold 32 random bytes in base64 "
                "(for example the output of: python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\").")
        return self.sealing_key


def _allowed_destinations(env: Mapping[str, str]) -> DestinationAllowlist:
    raw = env.get("EXPORT_ALLOWED_DESTINATION_HOSTS", "").strip()
    return DestinationAllowlist.parse(raw) if raw else DEFAULT_ALLOWLIST


def _sealing_key(env: Mapping[str, str]) -> Optional[bytes]:
    raw = env.get("EXPORT_SEALING_KEY", "").strip()
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ServiceConfigurationError("App setting EXPORT_SEALING_KEY must be 32 bytes encoded in base64.")
    return key


@dataclass(frozen=True)
class StoreSettings:
    """Where the DICOM store lives: a connection string or an identity-based service URI, and its container."""

    container: str
    connection_string: Optional[str] = None
    service_uri: Optional[str] = None
    client_id: Optional[str] = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "StoreSettings":
        """Read DICOM_STORE (or DICOM_STORE__blobServiceUri), falling back to AzureWebJobsStorage."""
        container = env.get("DICOM_STORE_CONTAINER", "").strip() or DEFAULT_STORE_CONTAINER
        if env.get("DICOM_STORE"):
            return cls(container, connection_string=env["DICOM_STORE"])
        if env.get("DICOM_STORE__blobServiceUri"):
            return cls(container, service_uri=env["DICOM_STORE__blobServiceUri"],
                       client_id=env.get("DICOM_STORE__clientId") or None)
        if env.get("AzureWebJobsStorage"):
            return cls(container, connection_string=env["AzureWebJobsStorage"])
        raise ServiceConfigurationError(
            "No DICOM store is configured: set DICOM_STORE (a connection string), DICOM_STORE__blobServiceUri "
            "(managed identity) or AzureWebJobsStorage.")
