"""The caller's blob container: validating its settings, connecting to it, and naming what is written there."""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, Mapping, Optional
from urllib.parse import SplitResult, urlsplit

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob.aio import ContainerClient

from shared.errors import InvalidRequestError
from shared.identifiers import DicomIdentifier
from shared.storage_errors import error_code, is_client_error, status_text

EMULATOR_ACCOUNT = "devstoreaccount1"
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_SETTINGS = "destination.settings"


def result_blob_name(operation_id: str, instance: DicomIdentifier) -> str:
    """Where an exported instance lands: `<operation id>/results/<study>/<series>/<sop>.dcm`."""
    return f"{operation_id}/results/{instance.study}/{instance.series}/{instance.sop}.dcm"


def error_log_blob_name(operation_id: str) -> str:
    """Where an operation's error log lives: `<operation id>/errors.log`."""
    return f"{operation_id}/errors.log"


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this machine, where the local storage emulator runs."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_connection_string(text: str) -> Dict[str, str]:
    pairs: Dict[str, str] = {}
    for segment in filter(None, (s.strip() for s in text.split(";"))):
        key, sep, value = segment.partition("=")
        if not sep or not key.strip():
            raise InvalidRequestError(
                f"{_SETTINGS}.connectionString is not a valid Azure Storage connection string: "
                f"the segment '{segment[:40]}' is not of the form Name=Value.")
        pairs[key.strip().lower()] = value.strip()
    return pairs


def _is_link_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_link_local
    except ValueError:
        return False


def _is_path_style(host: str) -> bool:
    """Whether a host puts the account name in the path (IP addresses and localhost, as the emulator does)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _check_endpoint(url: str, field: str, allow_local_emulator: bool) -> SplitResult:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port
    except ValueError:
        raise InvalidRequestError(f"{field} is not a valid URL: '{_without_query(url)}'.") from None
    if parts.username or parts.password:
        raise InvalidRequestError(f"{field} must not carry a user name or password, but '{parts.netloc}' does.")
    if not host or parts.scheme not in ("http", "https"):
        raise InvalidRequestError(f"{field} must be an absolute https URL, not '{_without_query(url)}'.")
    if _is_link_local(host):
        raise InvalidRequestError(f"{field} points at the link-local address '{host}', which is never allowed.")
    if is_loopback_host(host):
        if not allow_local_emulator:
            raise InvalidRequestError(
                f"{field} points at this machine ('{host}'), which is only allowed for the local storage emulator "
                "when the app setting EXPORT_ALLOW_LOCAL_EMULATOR is true.")
    elif parts.scheme != "https":
        raise InvalidRequestError(
            f"{field} must use https (plain http is only accepted for the local storage emulator), "
            f"not '{_without_query(url)}'.")
    return parts


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _check_container_name(name: str, field: str) -> None:
    if not _CONTAINER_NAME.match(name):
        raise InvalidRequestError(
            f"{field} '{name}' is not a valid blob container name: use 3 to 63 lowercase letters, digits and "
            "single hyphens, starting and ending with a letter or digit.")


def _optional_string(settings: Mapping[str, Any], key: str, field: str) -> Optional[str]:
    value = settings.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{field} must be a string, not {_json_repr(value)}.")
    return value.strip()


def _json_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class BlobDestination:
    """A validated destination: a container URI (optionally with SAS or managed identity) or a connection string."""

    container_uri: Optional[str] = None
    connection_string: Optional[str] = None
    container_name: Optional[str] = None
    use_managed_identity: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], allow_local_emulator: bool = False) -> "BlobDestination":
        """Validate request settings (keys already lower-cased); raise InvalidRequestError naming the problem.

        Destinations on this machine (the local storage emulator) are accepted only with `allow_local_emulator`.
        """
        uri = _optional_string(settings, "blobcontaineruri", f"{_SETTINGS}.blobContainerUri")
        conn = _optional_string(settings, "connectionstring", f"{_SETTINGS}.connectionString")
        name = _optional_string(settings, "blobcontainername", f"{_SETTINGS}.blobContainerName")
        use_mi = settings.get("usemanagedidentity", False)
        if use_mi is None:
            use_mi = False
        if not isinstance(use_mi, bool):
            raise InvalidRequestError(
                f"{_SETTINGS}.useManagedIdentity must be true or false, not {_json_repr(use_mi)}.")
        if uri and (conn or name):
            raise InvalidRequestError(
                f"{_SETTINGS}: 'blobContainerUri' cannot be combined with 'connectionString' or "
                "'blobContainerName'; give either the container URI or the connection string and container name.")
        if uri:
            return cls._from_uri(uri, use_mi, allow_local_emulator)
        if conn and name:
            return cls._from_connection_string(conn, name, use_mi, allow_local_emulator)
        if conn:
            raise InvalidRequestError(
                f"{_SETTINGS}.blobContainerName is missing: a 'connectionString' needs the name of the container.")
        if name:
            raise InvalidRequestError(
                f"{_SETTINGS}.connectionString is missing: 'blobContainerName' needs the connection string of its "
                "storage account (or give 'blobContainerUri' instead).")
        raise InvalidRequestError(
            f"{_SETTINGS} must contain either 'blobContainerUri', or both 'connectionString' and "
            "'blobContainerName'.")

    @classmethod
    def _from_uri(cls, uri: str, use_mi: bool, allow_local_emulator: bool) -> "BlobDestination":
        field = f"{_SETTINGS}.blobContainerUri"
        parts = _check_endpoint(uri, field, allow_local_emulator)
        if use_mi and "sig=" in parts.query.lower():
            raise InvalidRequestError(
                f"{_SETTINGS}.useManagedIdentity cannot be true when {field} carries a SAS token; "
                "remove the SAS or set useManagedIdentity to false.")
        if use_mi and parts.scheme != "https":
            raise InvalidRequestError(
                f"{_SETTINGS}.useManagedIdentity needs an https {field}, not '{_without_query(uri)}'.")
        segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
        expected = 2 if _is_path_style(parts.hostname or "") else 1
        if len(segments) < expected or not all(segments):
            raise InvalidRequestError(
                f"{field} '{_without_query(uri)}' does not name a container: give the container's URL, "
                "such as https://<account>.blob.core.windows.net/<container>.")
        if len(segments) > expected:
            raise InvalidRequestError(
                f"{field} '{_without_query(uri)}' has a path below the container; give the container's URL "
                "alone, such as https://<account>.blob.core.windows.net/<container>.")
        _check_container_name(segments[-1], f"The container in {field}")
        return cls(container_uri=uri, use_managed_identity=use_mi)

    @classmethod
    def _from_connection_string(cls, conn: str, name: str, use_mi: bool,
                                allow_local_emulator: bool) -> "BlobDestination":
        field = f"{_SETTINGS}.connectionString"
        if use_mi:
            raise InvalidRequestError(
                f"{_SETTINGS}.useManagedIdentity cannot be used with a connectionString; "
                "give 'blobContainerUri' with useManagedIdentity instead.")
        pairs = _parse_connection_string(conn)
        endpoint = pairs.get("blobendpoint")
        if endpoint:
            _check_endpoint(endpoint, f"The BlobEndpoint in {field}", allow_local_emulator)
        development = pairs.get("usedevelopmentstorage", "").lower() == "true"
        if development and not allow_local_emulator:
            raise InvalidRequestError(
                f"{field} names the local storage emulator (UseDevelopmentStorage=true), which is only allowed "
                "when the app setting EXPORT_ALLOW_LOCAL_EMULATOR is true.")
        emulator = development or (pairs.get("accountname") == EMULATOR_ACCOUNT and endpoint is not None
                                   and is_loopback_host(urlsplit(endpoint).hostname or ""))
        if "accountkey" in pairs and not emulator:
            raise InvalidRequestError(
                f"{field} holds an AccountKey: account key authentication is not supported. "
                "Use a SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity.")
        if "accountkey" in pairs:
            try:
                base64.b64decode(pairs["accountkey"], validate=True)
            except binascii.Error:
                raise InvalidRequestError(f"The AccountKey in {field} is not valid base64.") from None
        if not development and not endpoint and "accountname" not in pairs:
            raise InvalidRequestError(f"{field} names neither a BlobEndpoint nor an AccountName.")
        if not endpoint and not development and pairs.get("defaultendpointsprotocol", "https").lower() != "https":
            raise InvalidRequestError(f"{field} must use DefaultEndpointsProtocol=https.")
        _check_container_name(name, f"{_SETTINGS}.blobContainerName")
        try:
            ContainerClient.from_connection_string(conn, name)
        except ValueError as error:
            raise InvalidRequestError(f"{field} is not a valid Azure Storage connection string: {error}") from None
        return cls(connection_string=conn, container_name=name)

    def to_dict(self) -> Dict[str, Any]:
        """The settings, for sealing."""
        return {"container_uri": self.container_uri, "connection_string": self.connection_string,
                "container_name": self.container_name, "use_managed_identity": self.use_managed_identity}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "BlobDestination":
        """Settings from `to_dict()`, already validated when they were sealed."""
        return cls(**values)

    def _client(self, credential: Any = None, **options: Any) -> ContainerClient:
        if self.connection_string:
            return ContainerClient.from_connection_string(self.connection_string, self.container_name, **options)
        return ContainerClient.from_container_url(self.container_uri, credential=credential, **options)

    @property
    def container_url(self) -> str:
        """The container's URL without any query string (so without a SAS)."""
        return _without_query(self._client().url).rstrip("/")

    @property
    def account_and_container(self) -> tuple:
        """The storage account's and the container's names, for messages."""
        client = self._client()
        return client.account_name, client.container_name

    def error_href(self, operation_id: str) -> str:
        """The public URL of the operation's error log, with no SAS."""
        return f"{self.container_url}/{error_log_blob_name(operation_id)}"

    @asynccontextmanager
    async def open(self, identity_client_id: Optional[str] = None, **options: Any) -> AsyncIterator[ContainerClient]:
        """An async container client for this destination (SDK `options` passed on), with managed identity if asked."""
        credential = None
        if self.use_managed_identity:
            from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
            credential = ManagedIdentityCredential(client_id=identity_client_id) if identity_client_id \
                else DefaultAzureCredential()
        try:
            async with self._client(credential, **options) as client:
                yield client
        finally:
            if credential is not None:
                await credential.close()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Turn the destination's refusals inside the block into DestinationRefusedError; let faults through."""
        try:
            yield
        except Exception as error:
            if is_client_error(error):
                raise DestinationRefusedError(self.describe_refusal(error)) from error
            raise

    def describe_refusal(self, error: Exception) -> str:
        """A caller-actionable sentence for a storage error that stopped a write to the destination."""
        account, container = self.account_and_container
        where = f"Azure Blob Storage container '{container}' in account '{account}'"
        status = getattr(error, "status_code", None)
        if status is None and isinstance(error, ClientAuthenticationError):
            source = "the service's managed identity" if self.use_managed_identity else "the given credentials"
            return f"Unable to authenticate to {where} with {source}: {error}"
        code = error_code(error)
        if status == 404 and code in ("ContainerNotFound", ""):
            return f"Azure Blob Storage container '{container}' does not exist in account '{account}'."
        if status == 401 or code in ("AuthenticationFailed", "NoAuthenticationInformation",
                                     "InvalidAuthenticationInfo"):
            return (f"Unable to authenticate to {where} ({status} {code}): check that the SAS token is complete "
                    "and not expired, or that the service's managed identity is enabled.")
        if code == "AuthorizationPermissionMismatch":
            return (f"Not allowed to write to {where} ({status} {code}): a SAS token needs the create, write and "
                    "add permissions; a managed identity needs the 'Storage Blob Data Contributor' role.")
        if status == 403:
            return (f"Not authorized to write to {where} ({status} {code}): the SAS token may be expired or "
                    "signed with the wrong key, or the account's network rules may block this service.")
        return (f"{where} did not take the write ({status_text(error)}): check that the URL or connection string points at "
                "Azure Blob Storage; if the account is busy, try again.")


class DestinationRefusedError(Exception):
    """The destination will not take writes; the message is written for the caller."""
