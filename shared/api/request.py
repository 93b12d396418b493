"""Parses and validates the body of `POST /v{n}/export` into an ExportRequest."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Tuple

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist
from shared.destination.blob_destination import BlobDestination
from shared.destination.validation import parse_destination
from shared.errors import InvalidRequestError, quote_value
from shared.identifiers import IDENTIFIER_FORMAT, DicomIdentifier, normalize_identifiers, parse_identifier
from shared.request_fields import RequestObject, the_field

SOURCE_TYPE = "identifiers"
DESTINATION_TYPE = "azureBlob"
_BODY_NAMES = ("source", "destination")
_SECTION_NAMES = ("type", "settings")
_SOURCE_SETTING_NAMES = ("values",)
_SOURCE_SHAPE = "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}"
_DESTINATION_SHAPE = "{\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}"


@dataclass(frozen=True)
class ExportRequest:
    """What to export (normalised, de-duplicated identifiers) and where to."""

    identifiers: Tuple[DicomIdentifier, ...]
    destination: BlobDestination


def _object(parent: RequestObject, path: str, known: Tuple[str, ...], shape: str) -> RequestObject:
    value = parent.get(path.rsplit(".", 1)[-1])
    if value is None:
        raise InvalidRequestError(f"{parent.missing(path, known)}: give {shape}.")
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{the_field(path)} must be an object ({shape}), not {quote_value(value)}.")
    return RequestObject(value)


def _typed_section(body: RequestObject, key: str, expected_type: str, shape: str) -> RequestObject:
    section = _object(body, key, _BODY_NAMES, shape)
    kind = section.get("type")
    allowed = f"the only supported value is '{expected_type}'"
    if kind is None:
        raise InvalidRequestError(f"{section.missing(f'{key}.type', _SECTION_NAMES)}; {allowed}.")
    if not isinstance(kind, str) or kind.lower() != expected_type.lower():
        raise InvalidRequestError(f"{the_field(f'{key}.type')} is {quote_value(kind)}, which is not supported; "
                                  f"{allowed}.")
    return _object(section, f"{key}.settings", _SECTION_NAMES, shape)


def _identifiers(settings: RequestObject) -> Tuple[DicomIdentifier, ...]:
    path = "source.settings.values"
    values = settings.get("values")
    wanted = f"give a list of one or more identifiers in the format {IDENTIFIER_FORMAT}"
    if values is None:
        raise InvalidRequestError(f"{settings.missing(path, _SOURCE_SETTING_NAMES)}: {wanted}.")
    if values == []:
        raise InvalidRequestError(f"{the_field(path)} is empty: {wanted}.")
    if not isinstance(values, list):
        raise InvalidRequestError(f"{the_field(path)} must be a list of strings, not {quote_value(values)}.")
    parsed = []
    for index, value in enumerate(values):
        field = the_field(f"{path}[{index}]")
        if not isinstance(value, str):
            raise InvalidRequestError(f"{field} must be a string, not {quote_value(value)}.")
        try:
            parsed.append(parse_identifier(value))
        except InvalidRequestError as error:
            raise InvalidRequestError(f"{field} is invalid. {error}") from None
    return tuple(normalize_identifiers(parsed))


def _load_json(body: bytes) -> Any:
    if not body or not body.strip():
        raise InvalidRequestError("The request body is empty: send a JSON object with 'source' and 'destination'.")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not valid UTF-8 text.") from None
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"The request body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.") from None
    except ValueError as error:
        raise InvalidRequestError(f"The request body is not acceptable JSON: {error}") from None
    except RecursionError:
        raise InvalidRequestError("The request body is not valid JSON: it is nested too deeply.") from None


def parse_export_request(body: bytes, allowlist: DestinationAllowlist = DEFAULT_ALLOWLIST) -> ExportRequest:
    """Validate an export request body; raise InvalidRequestError naming the first field and value at fault.

    The destination's host must pass `allowlist` (EXPORT_ALLOWED_DESTINATION_HOSTS).
    """
    document = _load_json(body)
    if not isinstance(document, dict):
        raise InvalidRequestError(
            f"The request body must be a JSON object with 'source' and 'destination', not {quote_value(document)}.")
    document = RequestObject(document)
    source = _typed_section(document, "source", SOURCE_TYPE, _SOURCE_SHAPE)
    identifiers = _identifiers(source)
    settings = _typed_section(document, "destination", DESTINATION_TYPE, _DESTINATION_SHAPE)
    return ExportRequest(identifiers, parse_destination(settings, allowlist))
