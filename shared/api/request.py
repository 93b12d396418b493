"""Parses and validates the body of `POST /v{n}/export` into an ExportRequest."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist
from shared.deid.options import DeidOptions
from shared.destination.blob_destination import BlobDestination
from shared.destination.validation import parse_destination
from shared.errors import InvalidRequestError, quote_value
from shared.identifiers import IDENTIFIER_FORMAT, DicomIdentifier, normalize_identifiers, parse_identifier
from shared.partitions import DEFAULT_PARTITION, parse_partition
from shared.request_fields import RequestObject, the_field
from shared.study_selection import StudySelection, parse_filters

SOURCE_TYPES = ("identifiers", "query")
DESTINATION_TYPES = ("azureBlob",)
_BODY_NAMES = ("source", "destination", "deidentify")
_SECTION_NAMES = ("type", "settings")
_SOURCE_SHAPES = {"identifiers": "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}",
                  "query": "{\"type\": \"query\", \"settings\": {\"filters\": {...}}}"}
_DESTINATION_SHAPE = "{\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}"


@dataclass(frozen=True)
class ExportRequest:
    """What to export (normalised, de-duplicated identifiers, or a study selection), from which partition, where to."""

    identifiers: Tuple[DicomIdentifier, ...]
    destination: BlobDestination
    selection: Optional[StudySelection] = None
    partition: str = DEFAULT_PARTITION
    deidentify: Optional[DeidOptions] = None

    @property
    def source_kind(self) -> str:
        """`identifiers`, `everything` or `query`."""
        return self.selection.kind if self.selection else "identifiers"

    def entries(self) -> List[str]:
        """What the export takes, as stored among its working files: the identifiers, or the one selection."""
        return [self.selection.to_text()] if self.selection else [str(i) for i in self.identifiers]


def _object(parent: RequestObject, path: str, known: Tuple[str, ...], shape: str) -> RequestObject:
    value = parent.get(path.rsplit(".", 1)[-1])
    if value is None:
        raise InvalidRequestError(f"{parent.missing(path, known)}: give {shape}.")
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{the_field(path)} must be an object ({shape}), not {quote_value(value)}.")
    return RequestObject(value)


def _typed_section(body: RequestObject, key: str, types: Tuple[str, ...],
                   shapes: Dict[str, str]) -> Tuple[str, RequestObject]:
    """The section's `type` (one of `types`, in its documented spelling) and its `settings`."""
    section = _object(body, key, _BODY_NAMES, shapes[types[0]])
    kind = section.get("type")
    allowed = f"the only supported value is '{types[0]}'" if len(types) == 1 else \
        "the supported values are " + " and ".join(f"'{t}'" for t in types)
    if kind is None:
        raise InvalidRequestError(f"{section.missing(f'{key}.type', _SECTION_NAMES)}; {allowed}.")
    matched = [t for t in types if isinstance(kind, str) and kind.lower() == t.lower()]
    if not matched:
        raise InvalidRequestError(f"{the_field(f'{key}.type')} is {quote_value(kind)}, which is not supported; "
                                  f"{allowed}.")
    return matched[0], _object(section, f"{key}.settings", _SECTION_NAMES, shapes[matched[0]])


def _source(body: RequestObject) -> Tuple[Tuple[DicomIdentifier, ...], Optional[StudySelection]]:
    """The identifiers, or the selection: a query's, or every study when the body has no `source` at all."""
    if body.get("source") is None:
        spelling = body.misspelling_of("source", _BODY_NAMES)
        if spelling:  # a misspelt source must not widen the export to everything
            raise InvalidRequestError(f"{body.missing('source', _BODY_NAMES)}: give {_SOURCE_SHAPES['identifiers']}, "
                                      "or leave out 'source' to export everything.")
        return (), StudySelection()
    kind, settings = _typed_section(body, "source", SOURCE_TYPES, _SOURCE_SHAPES)
    if kind == "query":
        if settings.get("filters") is None:
            raise InvalidRequestError(f"{settings.missing('source.settings.filters', ('filters',))}: give "
                                      f"{_SOURCE_SHAPES['query']}.")
        return (), parse_filters(settings["filters"])
    return _identifiers(settings), None


def _identifiers(settings: RequestObject) -> Tuple[DicomIdentifier, ...]:
    path = "source.settings.values"
    values = settings.get("values")
    wanted = f"give a list of one or more identifiers in the format {IDENTIFIER_FORMAT}"
    if values is None:
        raise InvalidRequestError(f"{settings.missing(path, ('values',))}: {wanted}.")
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


def parse_export_request(body: bytes, allowlist: DestinationAllowlist = DEFAULT_ALLOWLIST,
                         partition: str = DEFAULT_PARTITION) -> ExportRequest:
    """Validate the route's partition and an export request body; raise InvalidRequestError naming the first field
    and value at fault. A body without `source` exports every study of the partition.

    The destination's host must pass `allowlist` (EXPORT_ALLOWED_DESTINATION_HOSTS). `deidentify`, when given, is
    an object of PS3.15 Annex E options (`{}` for the Basic Profile alone).
    """
    partition = parse_partition(partition)
    document = _load_json(body)
    if not isinstance(document, dict):
        raise InvalidRequestError(
            f"The request body must be a JSON object with 'source' and 'destination', not {quote_value(document)}.")
    document = RequestObject(document)
    identifiers, selection = _source(document)
    _, settings = _typed_section(document, "destination", DESTINATION_TYPES, {"azureBlob": _DESTINATION_SHAPE})
    deidentify = document.get("deidentify")
    return ExportRequest(identifiers, parse_destination(settings, allowlist), selection, partition,
                         None if deidentify is None else DeidOptions.parse(deidentify))


def parse_dry_run(value: Optional[str]) -> bool:
    """The `dryRun` query parameter: absent or `false` starts the export, `true` only checks and counts."""
    text = (value or "false").strip().lower()
    if text not in ("true", "false"):
        raise InvalidRequestError(f"The query parameter 'dryRun' is {quote_value(value)}: give true or false.")
    return text == "true"
