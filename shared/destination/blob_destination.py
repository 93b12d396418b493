"""The caller's blob container: validating its settings, connecting to it, and naming what is written there."""
from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, Optional

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.storage.blob.aio import ContainerClient

from shared.cloud.clients import TRANSFER_OPTIONS, cached_client, process_identity, shared_transport
from shared.cloud.identity import app_identity
from shared.cloud.storage_errors import error_code, is_client_error, status_text
from shared.destination.write_gate import gate_request
from shared.errors import ExportFailedError, ServiceConfigurationError
from shared.identifiers import DicomIdentifier


def result_blob_name(operation_id: str, instance: DicomIdentifier) -> str:
    """Where an exported instance lands: `<operation id>/results/<study>/<series>/<sop>.dcm`."""
    return f"{operation_id}/results/{instance.study}/{instance.series}/{instance.sop}.dcm"


def error_log_blob_name(operation_id: str) -> str:
    """Where an operation's error log lives: `<operation id>/errors.log`."""
    return f"{operation_id}/errors.log"


def without_query(url: str) -> str:
    """`url` without its query string, so without any SAS it carried."""
    return url.split("?", 1)[0]


def _destination_identity(client_id: Optional[str]) -> str:
    """The identity for destinations; never the app's own (DefaultAzureCredential), which holds rights of its own."""
    if not client_id:
        raise ServiceConfigurationError(
            "App setting EXPORT_IDENTITY_CLIENT_ID is not set; useManagedIdentity destinations need the client id of "
            "the identity for destinations.")
    return client_id


@dataclass(frozen=True)
class BlobDestination:
    """A validated destination: a container URI (optionally with SAS or managed identity) or a connection string."""

    container_uri: Optional[str] = None
    connection_string: Optional[str] = None
    container_name: Optional[str] = None
    use_managed_identity: bool = False

    def to_dict(self) -> Dict[str, Any]:
        """The settings, for sealing."""
        return {"container_uri": self.container_uri, "connection_string": self.connection_string,
                "container_name": self.container_name, "use_managed_identity": self.use_managed_identity}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "BlobDestination":
        """Settings from `to_dict()`, already validated when they were sealed."""
        return cls(**values)

    def _client(self, credential: Any = None, **options: Any) -> ContainerClient:
        options["permit_redirects"] = False  # a redirect could lead a SAS or token off the allowed hosts
        options["raw_request_hook"] = gate_request
        if self.connection_string:
            return ContainerClient.from_connection_string(self.connection_string, self.container_name, **options)
        return ContainerClient.from_container_url(self.container_uri, credential=credential, **options)

    @property
    def container_url(self) -> str:
        """The container's URL without any query string (so without a SAS)."""
        return without_query(self._client().url).rstrip("/")

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
        """An async container client for this destination (SDK `options` passed on), as the identity for destinations
        (EXPORT_IDENTITY_CLIENT_ID) if it uses managed identity."""
        credential = None
        if self.use_managed_identity:
            credential = app_identity(_destination_identity(identity_client_id))
        try:
            async with self._client(credential, **options) as client:
                yield client
        finally:
            if credential is not None:
                await credential.close()

    def shared_client(self, identity_client_id: Optional[str] = None) -> ContainerClient:
        """This process's client for the destination, on the account's shared connection pool; never closed."""
        def build() -> ContainerClient:
            credential = process_identity(_destination_identity(identity_client_id)) if self.use_managed_identity \
                else None
            return self._client(credential, transport=shared_transport(self._client().url), **TRANSFER_OPTIONS)
        return cached_client(json.dumps(self.to_dict(), sort_keys=True) + f"|{identity_client_id}", build)

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Name the destination in its errors inside the block: refusals (4xx) become DestinationRefusedError, faults
        that outlasted the SDK's retries DestinationUnavailableError (the activity is retried); others pass."""
        try:
            yield
        except AzureError as error:
            if is_client_error(error):
                raise DestinationRefusedError(self.describe_refusal(error)) from error
            if isinstance(error, ClientAuthenticationError):
                raise DestinationRefusedError(self.describe_refusal(error)) from error
            account, container = self.account_and_container
            raise DestinationUnavailableError(
                f"Azure Blob Storage container '{container}' in account '{account}' did not take writes "
                f"({status_text(error)}) after repeated tries.") from error

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
        return (f"{where} did not take the write ({status_text(error)}): check that the URL or connection string "
                "points at Azure Blob Storage; if the account is busy, try again.")


class DestinationRefusedError(Exception):
    """The destination will not take writes; the message is written for the caller."""


class DestinationUnavailableError(ExportFailedError):
    """The destination kept failing (5xx, no answer) after retries; the activity is retried, then the export fails."""
