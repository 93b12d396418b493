"""The app settings the service reads, with their defaults; the README's settings table mirrors this module."""
from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple
from urllib.parse import urlsplit

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist, is_loopback_host
from shared.errors import InvalidRequestError, ServiceConfigurationError

DEFAULT_BATCH_SIZE = 250  # docs/design.md, "Batches" (instances of unknown size: at most 100 to a batch)
DEFAULT_BATCHES_IN_FLIGHT = 4
DEFAULT_COPIES_PER_BATCH = 8
DEFAULT_BATCH_MAX_BYTES = 2 * 1024 ** 3  # docs/design.md, "One copy activity within the function timeout"
BATCH_MAX_BYTES_RANGE = (1024 ** 2, 64 * 1024 ** 3)
DEFAULT_STORE_CONTAINER = "dicom"
DEFAULT_WORK_CONTAINER_PREFIX = "dicom-export"
_WORK_CONTAINER_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,29}$")  # + "-" + 32 hex <= 63
COPY_MODES = ("auto", "put-from-url", "copy-from-url", "stream")
DEFAULT_DICOMWEB_SCOPE = "https://dicom.healthcareapis.azure.com/.default"
STORE_TYPES = ("blob", "dicomweb")
DICOMWEB_AUTH_MODES = ("none", "basic", "identity")
ACTIVITY_ATTEMPTS = 4
# One worker process shares one DICOMweb pool among all its activities: host.json runs up to 8 at once (this allows
# twice that), each copying EXPORT_COPIES_PER_BATCH instances or reading up to 8 listings ahead.
ACTIVITIES_PER_WORKER = 16
LISTINGS_IN_FLIGHT = 8
ACTIVITY_FIRST_RETRY_MS = 5_000
NOTIFY_ATTEMPTS, NOTIFY_FIRST_RETRY_MS = 5, 5_000  # completion event: waits of 5, 10, 20, 40 s between attempts
EVENT_GRID_SCOPE = "https://eventgrid.azure.net/.default"


def _whole_number(env: Mapping[str, str], name: str, default: int, maximum: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise ServiceConfigurationError(
            f"App setting {name} must be a whole number from {minimum} to {maximum}, not '{raw}'.")
    return int(raw)


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ServiceConfigurationError(f"App setting {name} must be true or false, not '{env[name]}'.")
    return raw == "true"


def detailed_logs_requested(env: Mapping[str, str] = os.environ) -> bool:
    """EXPORT_DETAILED_LOGS: whether logs may carry DICOM UIDs and the Azure SDK's HTTP lines (for debugging)."""
    return _switch(env, "EXPORT_DETAILED_LOGS")


def _concurrency(env: Mapping[str, str]) -> Tuple[int, int, int]:
    """EXPORT_BATCH_SIZE, EXPORT_BATCHES_IN_FLIGHT and EXPORT_COPIES_PER_BATCH, checked."""
    return (_whole_number(env, "EXPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE, 500),
            _whole_number(env, "EXPORT_BATCHES_IN_FLIGHT", DEFAULT_BATCHES_IN_FLIGHT, 16),
            _whole_number(env, "EXPORT_COPIES_PER_BATCH", DEFAULT_COPIES_PER_BATCH, 64))


@dataclass(frozen=True)
class ExportSettings:
    """How exports are batched, sealed and logged, read from the app settings."""

    batch_size: int = DEFAULT_BATCH_SIZE
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT
    copies_per_batch: int = DEFAULT_COPIES_PER_BATCH
    sealing_key: Optional[bytes] = None
    identity_client_id: Optional[str] = None
    allowed_destinations: DestinationAllowlist = DEFAULT_ALLOWLIST
    copy_mode: str = "auto"
    detailed_logs: bool = False

    @property
    def copies_in_flight(self) -> int:
        """The most copies one export runs at once: batches in flight × copies per batch."""
        return self.batches_in_flight * self.copies_per_batch

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "ExportSettings":
        """Read and check EXPORT_* settings; raise ServiceConfigurationError naming a malformed one."""
        batch_size, batches_in_flight, copies_per_batch = _concurrency(env)
        return cls(
            batch_size=batch_size,
            batch_max_bytes=_whole_number(env, "EXPORT_BATCH_MAX_BYTES", DEFAULT_BATCH_MAX_BYTES,
                                          BATCH_MAX_BYTES_RANGE[1], BATCH_MAX_BYTES_RANGE[0]),
            batches_in_flight=batches_in_flight,
            copies_per_batch=copies_per_batch,
            sealing_key=_sealing_key(env),
            identity_client_id=env.get("EXPORT_IDENTITY_CLIENT_ID") or None,
            allowed_destinations=_allowed_destinations(env),
            copy_mode=_copy_mode(env),
            detailed_logs=detailed_logs_requested(env),
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


def _copy_mode(env: Mapping[str, str]) -> str:
    raw = env.get("EXPORT_COPY_MODE", "").strip().lower() or "auto"
    if raw not in COPY_MODES:
        raise ServiceConfigurationError(
            f"App setting EXPORT_COPY_MODE must be one of {', '.join(COPY_MODES)}, not '{env['EXPORT_COPY_MODE']}'.")
    return raw


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
class DicomWebSettings:
    """A DICOMweb server to export from: its service root, how to authenticate, and how many connections to pool."""

    url: str
    auth: str = "none"
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    scope: str = DEFAULT_DICOMWEB_SCOPE
    client_id: Optional[str] = None
    connections: int = ACTIVITIES_PER_WORKER * max(DEFAULT_COPIES_PER_BATCH, LISTINGS_IN_FLIGHT)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "DicomWebSettings":
        """Read and check DICOMWEB_* settings; raise ServiceConfigurationError naming a missing or malformed one."""
        auth = env.get("DICOMWEB_AUTH", "").strip().lower() or "none"
        if auth not in DICOMWEB_AUTH_MODES:
            raise ServiceConfigurationError(
                f"App setting DICOMWEB_AUTH must be none, basic or identity, not '{env['DICOMWEB_AUTH']}'.")
        url = _dicomweb_url(env.get("DICOMWEB_URL", "").strip(), auth)
        username = password = None
        if auth == "basic":
            username, password = env.get("DICOMWEB_USERNAME", ""), env.get("DICOMWEB_PASSWORD", "")
            for name, value in (("DICOMWEB_USERNAME", username), ("DICOMWEB_PASSWORD", password)):
                if not value:
                    raise ServiceConfigurationError(f"App setting {name} must be set when DICOMWEB_AUTH is basic.")
            if ":" in username:
                raise ServiceConfigurationError("App setting DICOMWEB_USERNAME must not contain ':'.")
        copies_per_batch = _concurrency(env)[2]
        return cls(url, auth, username, password,
                   scope=env.get("DICOMWEB_SCOPE", "").strip() or DEFAULT_DICOMWEB_SCOPE,
                   client_id=env.get("DICOMWEB_CLIENT_ID", "").strip() or None,
                   connections=ACTIVITIES_PER_WORKER * max(copies_per_batch, LISTINGS_IN_FLIGHT))


def _dicomweb_url(raw: str, auth: str) -> str:
    if not raw:
        raise ServiceConfigurationError(
            "App setting DICOMWEB_URL is not set; with DICOM_STORE_TYPE dicomweb it must hold the DICOMweb service "
            "root, for example https://<workspace>-<service>.dicom.azurehealthcareapis.com/v2.")
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise ServiceConfigurationError(
            "App setting DICOMWEB_URL must not contain credentials; use DICOMWEB_AUTH basic with DICOMWEB_USERNAME "
            "and DICOMWEB_PASSWORD.")
    if parts is None or parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ServiceConfigurationError(
            f"App setting DICOMWEB_URL must be an http or https URL of the DICOMweb service root with no query, "
            f"not '{raw}'.")
    if auth != "none" and parts.scheme != "https" and not is_loopback_host(host):
        raise ServiceConfigurationError(
            f"App setting DICOMWEB_URL must use https when DICOMWEB_AUTH is {auth}, so that credentials are not "
            f"sent in clear (plain http is allowed for loopback hosts only).")
    return raw.rstrip("/")


@dataclass(frozen=True)
class StoreSettings:
    """Where the DICOM store lives: a blob container (connection string or identity-based URI) or a DICOMweb server."""

    container: str
    connection_string: Optional[str] = None
    service_uri: Optional[str] = None
    client_id: Optional[str] = None
    dicomweb: Optional[DicomWebSettings] = None

    @classmethod
    def _from_setting(cls, env: Mapping[str, str], name: str, container: str) -> Optional["StoreSettings"]:
        """The account named by app setting `name` (a connection string) or `name__blobServiceUri`, if set."""
        if env.get(name):
            return cls(container, connection_string=env[name])
        if env.get(f"{name}__blobServiceUri"):
            return cls(container, service_uri=env[f"{name}__blobServiceUri"],
                       client_id=env.get(f"{name}__clientId") or None)
        return None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "StoreSettings":
        """Read DICOM_STORE_TYPE; for blob, DICOM_STORE (or DICOM_STORE__blobServiceUri), else AzureWebJobsStorage."""
        container = env.get("DICOM_STORE_CONTAINER", "").strip() or DEFAULT_STORE_CONTAINER
        store_type = env.get("DICOM_STORE_TYPE", "").strip().lower() or "blob"
        if store_type not in STORE_TYPES:
            raise ServiceConfigurationError(
                f"App setting DICOM_STORE_TYPE must be blob or dicomweb, not '{env['DICOM_STORE_TYPE']}'.")
        if store_type == "dicomweb":
            return cls(container, dicomweb=DicomWebSettings.from_environment(env))
        found = cls._from_setting(env, "DICOM_STORE", container) or cls._from_setting(env, "AzureWebJobsStorage",
                                                                                     container)
        if found is None:
            raise ServiceConfigurationError(
                "No DICOM store is configured: set DICOM_STORE (a connection string), DICOM_STORE__blobServiceUri "
                "(managed identity) or AzureWebJobsStorage.")
        return found


class WorkSettings(StoreSettings):
    """The service's own storage (AzureWebJobsStorage); `container` is the prefix of each export's work container."""

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "WorkSettings":
        """Read AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri) and EXPORT_WORK_CONTAINER_PREFIX."""
        prefix = env.get("EXPORT_WORK_CONTAINER_PREFIX", "").strip() or DEFAULT_WORK_CONTAINER_PREFIX
        if not _WORK_CONTAINER_PREFIX.match(prefix):
            raise ServiceConfigurationError(
                f"App setting EXPORT_WORK_CONTAINER_PREFIX must be 3 to 30 lowercase letters, digits and single "
                f"hyphens, starting and ending with a letter or digit, not '{prefix}'.")
        found = cls._from_setting(env, "AzureWebJobsStorage", prefix)
        if found is None:
            raise ServiceConfigurationError(
                "The service's own storage is not configured: set AzureWebJobsStorage (a connection string) or "
                "AzureWebJobsStorage__blobServiceUri (managed identity).")
        return found


@dataclass(frozen=True)
class NotifySettings:
    """Where an export's completion event goes (EXPORT_NOTIFY_URL: a webhook or an Event Grid topic endpoint), the
    Standard Webhooks signing secret, and how an Event Grid topic is authenticated."""

    url: Optional[str] = None
    secret: Optional[bytes] = field(default=None, repr=False)
    auth: str = "webhook"
    key: Optional[str] = field(default=None, repr=False)
    client_id: Optional[str] = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> "NotifySettings":
        """Read and check EXPORT_NOTIFY_*; the URL's host must pass EXPORT_ALLOWED_DESTINATION_HOSTS."""
        url = env.get("EXPORT_NOTIFY_URL", "").strip()
        if not url:
            return cls()
        try:
            _allowed_destinations(env).check(url, "App setting EXPORT_NOTIFY_URL")
        except InvalidRequestError as error:
            raise ServiceConfigurationError(str(error)) from None
        auth, raw_secret = env.get("EXPORT_NOTIFY_AUTH", "").strip().lower() or "webhook", \
            env.get("EXPORT_NOTIFY_SECRET", "").strip()
        secret = base64.b64decode(raw_secret[6:]) if re.fullmatch(r"whsec_[A-Za-z0-9+/]+={0,2}", raw_secret) else None
        if raw_secret and not (secret and 24 <= len(secret) <= 64):
            raise ServiceConfigurationError("App setting EXPORT_NOTIFY_SECRET must be 'whsec_' followed by 24 to 64 "
                                            "random bytes in base64.")
        key = env.get("EXPORT_NOTIFY_KEY", "").strip() or None
        needed = {"webhook": ("EXPORT_NOTIFY_SECRET", secret), "aeg-sas-key": ("EXPORT_NOTIFY_KEY", key),
                  "identity": ("", True)}
        if auth not in needed:
            raise ServiceConfigurationError(
                f"App setting EXPORT_NOTIFY_AUTH must be webhook, aeg-sas-key or identity, not '{auth}'.")
        if not needed[auth][1]:
            raise ServiceConfigurationError(f"App setting {needed[auth][0]} must be set when EXPORT_NOTIFY_AUTH is "
                                            f"{auth} (the default is webhook).")
        return cls(url, secret, auth, key, env.get("EXPORT_NOTIFY_CLIENT_ID", "").strip() or None)
