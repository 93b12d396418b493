"""The Functions app: HTTP endpoints of the export API and the registration of orchestrators and activities."""
import json
import logging
import uuid
from typing import Awaitable, Callable, Optional
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from activities.export_steps import bp as export_steps
from orchestrators.export_orchestrator import bp as export_orchestration
from shared.api.control import (
    OperationFinishedError,
    OperationNotFoundError,
    cancel_export,
    describe_export,
    find_export,
)
from shared.api.request import parse_export_request
from shared.api.start import prepare_export
from shared.errors import InvalidRequestError, ServiceConfigurationError
from shared.settings import ExportSettings

SUPPORTED_VERSIONS = {"1": 1, "2": 2}
ORCHESTRATOR = "export_orchestrator"
POLL_AFTER_SECONDS = 5  # Retry-After on a 202: the status is republished after every wave of copies
# Every path but the versioned ones (and the host's own admin/ and runtime/ routes), whatever the host's route order.
UNKNOWN_ROUTE = "{*path:regex(^(?!v[^/]+/(export|operations/[^/]+)/?$|admin(/|$)|runtime(/|$)).*$)}"

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(export_orchestration)
app.register_functions(export_steps)


def _text(status_code: int, message: str) -> func.HttpResponse:
    body = message.encode("utf-8", "backslashreplace")  # echoed input may hold lone surrogates
    return func.HttpResponse(body, status_code=status_code, mimetype="text/plain", charset="utf-8")


def _json(status_code: int, body: dict, location: Optional[str] = None) -> func.HttpResponse:
    headers = {"Location": location, "Retry-After": str(POLL_AFTER_SECONDS)} if location else None
    return func.HttpResponse(json.dumps(body), status_code=status_code, mimetype="application/json",
                             charset="utf-8", headers=headers)


def _api_version(req: func.HttpRequest) -> Optional[int]:
    return SUPPORTED_VERSIONS.get(req.route_params.get("version", ""))


def _version_not_found(req: func.HttpRequest) -> func.HttpResponse:
    return _text(404, f"API version 'v{req.route_params.get('version', '')}' is not supported; use v1 or v2.")


def _operation_href(req: func.HttpRequest, version: int, operation_id: str) -> str:
    url = urlsplit(req.url)
    return f"{url.scheme}://{url.netloc}/v{version}/operations/{operation_id}"


def _is_json(req: func.HttpRequest) -> bool:
    media_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


@app.route(route="v{version}/export", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_export(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /v{n}/export: validate, check the destination, start the orchestration, answer 202 with its href."""
    version = _api_version(req)
    if version is None:
        return _version_not_found(req)
    if not _is_json(req):
        return _text(415, f"The request's Content-Type must be application/json, not "
                          f"'{req.headers.get('content-type', '(none)')}'.")
    operation_id = uuid.uuid4().hex
    try:
        settings = ExportSettings.from_environment()
        request = parse_export_request(req.get_body(), settings.allowed_destinations)
        checkpoint = await prepare_export(request, operation_id, settings)
    except InvalidRequestError as error:
        return _text(400, str(error))
    except ServiceConfigurationError as error:
        logging.error("Export refused: %s", error)
        return _text(500, f"The export service is misconfigured: {error}")
    await client.start_new(ORCHESTRATOR, operation_id, checkpoint.to_dict())
    logging.info("Export %s started: %d identifiers", operation_id, len(request.identifiers))
    href = _operation_href(req, version, operation_id)
    return _json(202, {"id": operation_id, "href": href}, location=href)


async def _answer_for_operation(req: func.HttpRequest,
                                act: Callable[[int, str], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Check the version, then run `act(version, operation id)`; unknown operations are 404s, ended ones 409s."""
    version = _api_version(req)
    if version is None:
        return _version_not_found(req)
    try:
        return await act(version, req.route_params.get("operationId", ""))
    except OperationNotFoundError as error:
        return _text(404, str(error))
    except OperationFinishedError as error:
        return _text(409, str(error))


@app.route(route="v{version}/operations/{operationId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def get_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """GET /v{n}/operations/{id}: the export's status, 202 while in progress, 200 once terminal, 404 if unknown."""
    async def describe(version: int, operation_id: str) -> func.HttpResponse:
        state = describe_export(operation_id, await find_export(client, operation_id, ORCHESTRATOR), version)
        location = _operation_href(req, version, operation_id) if state.in_progress else None
        return _json(state.status_code, state.body, location=location)
    return await _answer_for_operation(req, describe)


@app.route(route="v{version}/operations/{operationId}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def cancel_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """DELETE /v{n}/operations/{id}: cancel a running export; 200 with its canceled status, 404 unknown, 409 ended."""
    async def cancel(version: int, operation_id: str) -> func.HttpResponse:
        state = await cancel_export(client, operation_id, ORCHESTRATOR, version)
        logging.info("Export %s canceled", operation_id)
        return _json(state.status_code, state.body)
    return await _answer_for_operation(req, cancel)


@app.route(route=UNKNOWN_ROUTE, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def unknown_route(req: func.HttpRequest) -> func.HttpResponse:
    """Any path outside the versioned API: 404 naming /v1 and /v2 (registered last, and named to sort last)."""
    path = urlsplit(req.url).path or "/"
    return _text(404, f"There is no endpoint at {req.method} {path[:200]}. The export API's paths start with its "
                      "version, /v1 or /v2: POST /v2/export, then GET or DELETE /v2/operations/{id} "
                      "(or the same under /v1).")
