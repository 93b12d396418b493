"""Parses and validates the body of `POST /v{n}/export` into an ExportRequest."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Tuple

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist
from shared.destination.blob_destination import BlobDestination
from shared.destination.validation import parse_destination
from shared.errors import InvalidRequestError, quote_value
from shared.identifiers import IDENTIFIER_FORMAT, DicomIdentifier, normalize_identifiers, parse_identifier

SOURCE_TYPE = "identifiers"
DESTINATION_TYPE = "azureBlob"


@dataclass(frozen=True)
class ExportRequest:
    """What to export (normalised, de-duplicated identifiers) and where to."""

    identifiers: Tuple[DicomIdentifier, ...]
    destination: BlobDestination


def _lower_keys(value: Dict[str, Any]) -> Dict[str, Any]:
    return {key.lower(): item for key, item in value.items()}


def _object(parent: Dict[str, Any], key: str, field: str, hint: str) -> Dict[str, Any]:
    value = parent.get(key)
    if value is None:
        raise InvalidRequestError(f"The field '{field}' is required: {hint}.")
    if not isinstance(value, dict):
        raise InvalidRequestError(f"The field '{field}' must be an object ({hint}), not {quote_value(value)}.")
    return _lower_keys(value)


def _typed_section(body: Dict[str, Any], key: str, expected_type: str, hint: str) -> Dict[str, Any]:
    section = _object(body, key, key, hint)
    kind = section.get("type")
    if kind is None:
        raise InvalidRequestError(f"The field '{key}.type' is required; the only supported value is '{expected_type}'.")
    if not isinstance(kind, str) or kind.lower() != expected_type.lower():
        raise InvalidRequestError(
            f"The field '{key}.type' is {quote_value(kind)}, which is not supported; "
            f"the only supported value is '{expected_type}'.")
    return _object(section, "settings", f"{key}.settings", hint)


def _identifiers(settings: Dict[str, Any]) -> Tuple[DicomIdentifier, ...]:
    values = settings.get("values")
    if values is None or values == []:
        raise InvalidRequestError(
            f"The field 'source.settings.values' is missing or empty: give a list of one or more identifiers "
            f"in the format {IDENTIFIER_FORMAT}.")
    if not isinstance(values, list):
        raise InvalidRequestError(
            f"The field 'source.settings.values' must be a list of strings, not {quote_value(values)}.")
    parsed = []
    for index, value in enumerate(values):
        field = f"source.settings.values[{index}]"
        if not isinstance(value, str):
            raise InvalidRequestError(f"The field '{field}' must be a string, not {quote_value(value)}.")
        try:
            parsed.append(parse_identifier(value))
        except InvalidRequestError as error:
            raise InvalidRequestError(f"The field '{field}' is invalid. {error}") from None
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
    document = _lower_keys(document)
    if "source" not in document and "sources" in document:
        raise InvalidRequestError("The field 'source' is required; the body has 'sources' instead.")
    source = _typed_section(document, "source", SOURCE_TYPE,
                            "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}")
    identifiers = _identifiers(source)
    settings = _typed_section(document, "destination", DESTINATION_TYPE,
                              "{\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}")
    return ExportRequest(identifiers, parse_destination(settings, allowlist))
