"""Validates the request's `destination.settings` into a BlobDestination, naming the field and value at fault."""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit

from azure.storage.blob.aio import ContainerClient

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist, is_ip_literal, is_loopback_host
from shared.destination.blob_destination import BlobDestination, without_query
from shared.errors import InvalidRequestError, quote_value
from shared.request_fields import RequestObject, the_field

EMULATOR_ACCOUNT = "devstoreaccount1"
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_SETTINGS = "destination.settings"
_SETTING_NAMES = ("blobContainerUri", "connectionString", "blobContainerName", "useManagedIdentity")
_URI = the_field(f"{_SETTINGS}.blobContainerUri")
_CONNECTION_STRING = the_field(f"{_SETTINGS}.connectionString")
_MANAGED_IDENTITY = the_field(f"{_SETTINGS}.useManagedIdentity")


def _parse_connection_string(text: str) -> Dict[str, str]:
    pairs: Dict[str, str] = {}
    for segment in filter(None, (s.strip() for s in text.split(";"))):
        key, sep, value = segment.partition("=")
        if not sep or not key.strip():
            raise InvalidRequestError(
                f"{_CONNECTION_STRING} is not a valid Azure Storage connection string: "
                f"the segment '{segment[:40]}' is not of the form Name=Value.")
        pairs[key.strip().lower()] = value.strip()
    return pairs


def _is_path_style(host: str) -> bool:
    """Whether a host puts the account name in the path (IP addresses and localhost, as the emulator does)."""
    return host == "localhost" or is_ip_literal(host)


def _check_container_name(name: str, field: str) -> None:
    if not _CONTAINER_NAME.match(name):
        raise InvalidRequestError(
            f"{field} '{name}', which is not a valid blob container name: use 3 to 63 lowercase letters, digits "
            "and single hyphens, starting and ending with a letter or digit.")


def _optional_string(settings: Mapping[str, Any], name: str) -> Optional[str]:
    value = settings.get(name.lower())
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{the_field(f'{_SETTINGS}.{name}')} must be a string, not {quote_value(value)}.")
    return value.strip()


def parse_destination(settings: Mapping[str, Any],
                      allowlist: DestinationAllowlist = DEFAULT_ALLOWLIST) -> BlobDestination:
    """Validate `destination.settings` (names case-insensitive); raise InvalidRequestError naming the problem.

    The host the storage SDK would connect to must pass `allowlist` (EXPORT_ALLOWED_DESTINATION_HOSTS).
    """
    fields = settings if isinstance(settings, RequestObject) else RequestObject(settings)
    uri = _optional_string(fields, "blobContainerUri")
    conn = _optional_string(fields, "connectionString")
    name = _optional_string(fields, "blobContainerName")
    use_mi = fields.get("usemanagedidentity", False)
    if use_mi is None:
        use_mi = False
    if not isinstance(use_mi, bool):
        raise InvalidRequestError(f"{_MANAGED_IDENTITY} must be true or false, not {quote_value(use_mi)}.")
    if uri and (conn or name):
        raise InvalidRequestError(
            f"{_URI} cannot be combined with 'connectionString' or 'blobContainerName'; give either the container "
            "URI or the connection string and container name.")
    if uri:
        return _from_uri(uri, use_mi, allowlist)
    if conn and name:
        return _from_connection_string(conn, name, use_mi, allowlist)
    if conn:
        raise InvalidRequestError(f"{fields.missing(f'{_SETTINGS}.blobContainerName', _SETTING_NAMES)}: "
                                  "a 'connectionString' needs the name of the container.")
    if name:
        raise InvalidRequestError(
            f"{fields.missing(f'{_SETTINGS}.connectionString', _SETTING_NAMES)}: 'blobContainerName' needs the "
            "connection string of its storage account (or give 'blobContainerUri' instead).")
    raise InvalidRequestError(_neither_uri_nor_connection_string(fields))


def _neither_uri_nor_connection_string(fields: RequestObject) -> str:
    """The message for settings naming no container, with the likeliest misspelt name when there is one."""
    for name in ("blobContainerUri", "connectionString", "blobContainerName"):
        spelling = fields.misspelling_of(name, _SETTING_NAMES)
        if spelling:
            hint = f" (did you mean '{name}' for '{spelling}'?)"
            break
    else:
        hint = ""
    return (f"{the_field(_SETTINGS)} must contain either 'blobContainerUri', or both 'connectionString' and "
            f"'blobContainerName'{hint}.")


def _from_uri(uri: str, use_mi: bool, allowlist: DestinationAllowlist) -> BlobDestination:
    parts = allowlist.check(uri, _URI)
    if use_mi and "sig=" in parts.query.lower():
        raise InvalidRequestError(
            f"{_MANAGED_IDENTITY} cannot be true when 'blobContainerUri' carries a SAS token; "
            "remove the SAS or set useManagedIdentity to false.")
    if use_mi and parts.scheme != "https":
        raise InvalidRequestError(
            f"{_MANAGED_IDENTITY} needs an https 'blobContainerUri', not '{without_query(uri)}'.")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    expected = 2 if _is_path_style(parts.hostname or "") else 1
    if len(segments) < expected or not all(segments):
        raise InvalidRequestError(
            f"{_URI} is '{without_query(uri)}', which does not name a container: give the container's URL, "
            "such as https://<account>.blob.core.windows.net/<container>.")
    if len(segments) > expected:
        raise InvalidRequestError(
            f"{_URI} is '{without_query(uri)}', which has a path below the container; give the container's URL "
            "alone, such as https://<account>.blob.core.windows.net/<container>.")
    _check_container_name(segments[-1], f"{_URI} names the container")
    destination = BlobDestination(container_uri=uri, use_managed_identity=use_mi)
    allowlist.check(destination.container_url, _URI)
    return destination


def _from_connection_string(conn: str, name: str, use_mi: bool, allowlist: DestinationAllowlist) -> BlobDestination:
    field = _CONNECTION_STRING
    if use_mi:
        raise InvalidRequestError(
            f"{_MANAGED_IDENTITY} cannot be used with a connectionString; "
            "give 'blobContainerUri' with useManagedIdentity instead.")
    pairs = _parse_connection_string(conn)
    endpoint = pairs.get("blobendpoint")
    if endpoint:
        allowlist.check(endpoint, f"{field} has a BlobEndpoint that")
    development = pairs.get("usedevelopmentstorage", "").lower() == "true"
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
            raise InvalidRequestError(f"{field} has an AccountKey that is not valid base64.") from None
    if not development and not endpoint and "accountname" not in pairs:
        raise InvalidRequestError(f"{field} names neither a BlobEndpoint nor an AccountName.")
    if not endpoint and not development and pairs.get("defaultendpointsprotocol", "https").lower() != "https":
        raise InvalidRequestError(f"{field} must use DefaultEndpointsProtocol=https.")
    _check_container_name(name, f"{the_field(f'{_SETTINGS}.blobContainerName')} is")
    try:
        ContainerClient.from_connection_string(conn, name)
    except ValueError as error:
        raise InvalidRequestError(f"{field} is not a valid Azure Storage connection string: {error}") from None
    destination = BlobDestination(connection_string=conn, container_name=name)
    # the SDK's own reading of the string (AccountName + EndpointSuffix, odd spacing) decides where it connects
    allowlist.check(destination.container_url, f"{field} has a blob endpoint that")
    return destination
