"""The Functions app: the export API's HTTP endpoints, the orphaned-work sweep, the other functions' registration."""
import json
import logging
import uuid
from typing import Awaitable, Callable, Optional
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from activities.export_steps import bp as export_steps
from activities.notification import bp as notification_steps
from orchestrators.export_orchestrator import bp as export_orchestration
from orchestrators.notification import bp as notification_orchestration
from shared.api.control import (
    OperationFinishedError,
    OperationNotFoundError,
    cancel_export,
    export_runtime_status,
    read_export,
)
from shared.api.dry_run import preview_export
from shared.api.request import parse_dry_run, parse_export_request
from shared.api.start import abandon_export, prepare_export
from shared.errors import InvalidRequestError, ServiceConfigurationError
from shared.export.orphan_sweep import sweep_orphaned_work
from shared.log_setup import configure_logging
from shared.partitions import DEFAULT_PARTITION
from shared.settings import ExportSettings
from shared.source.protocol import StoreReadError, StoreRefusedError

SUPPORTED_VERSIONS = {"1": 1, "2": 2}
ORCHESTRATOR = "export_orchestrator"
POLL_AFTER_SECONDS = 5  # Retry-After on a 202: the status is republished after every wave of copies
# Every path but the versioned ones (and the host's own admin/ and runtime/ routes), whatever the host's route order.
UNKNOWN_ROUTE = ("{*path:regex(^(?!v[^/]+/(export|partitions/[^/]+/export|operations/[^/]+)/?$|admin(/|$)"
                 "|runtime(/|$)).*$)}")
SWEEP_SCHEDULE = "0 */30 * * * *"  # every 30 minutes (NCRONTAB with seconds)

configure_logging()
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(export_orchestration)
app.register_functions(export_steps)
app.register_functions(notification_orchestration)
app.register_functions(notification_steps)


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


def _service_url(req: func.HttpRequest) -> str:
    """The API's base URL as the caller reached it, the source of completion events."""
    url = urlsplit(req.url)
    return f"{url.scheme}://{url.netloc}"


def _operation_href(req: func.HttpRequest, version: int, operation_id: str) -> str:
    return f"{_service_url(req)}/v{version}/operations/{operation_id}"


def _is_json(req: func.HttpRequest) -> bool:
    media_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def _start(req: func.HttpRequest, client: df.DurableOrchestrationClient, partition: str) -> func.HttpResponse:
    """Validate, check the destination, then start the orchestration (202 with its href) or, for a dry run, answer
    200 with what would be exported."""
    version = _api_version(req)
    if version is None:
        return _version_not_found(req)
    if not _is_json(req):
        return _text(415, f"The request's Content-Type must be application/json, not "
                          f"'{req.headers.get('content-type', '(none)')}'.")
    operation_id = uuid.uuid4().hex
    try:
        dry_run = parse_dry_run(req.params.get("dryRun"))
        settings = ExportSettings.from_environment()
        request = parse_export_request(req.get_body(), settings.allowed_destinations, partition)
        if dry_run:
            return _json(200, await preview_export(request, settings))
        checkpoint = await prepare_export(request, operation_id, settings, _service_url(req))
    except InvalidRequestError as error:
        return _text(400, str(error))
    except ServiceConfigurationError as error:
        logging.error("Export %s refused: %s", operation_id, error)
        return _text(500, f"The export service is misconfigured: {error}")
    except (StoreRefusedError, StoreReadError) as error:  # only a dry run reads the store before starting
        logging.error("Dry run: the DICOM store did not answer (%s)", type(error).__name__)
        return _text(502, f"The DICOM store did not answer the dry run: {error}")
    try:
        await client.start_new(ORCHESTRATOR, operation_id, checkpoint.to_dict())
    except Exception as error:  # the Durable extension's answer or connection (the SDK raises bare Exception)
        await abandon_export(operation_id)
        logging.error("Export %s did not start (%s); its working files are deleted", operation_id,
                      type(error).__name__)
        return _text(503, "The export could not be started: the Durable Functions backend did not accept it. "
                          "Nothing was exported; try again later.")
    logging.info("Export %s started: %d entries (%s) from partition %s", operation_id, checkpoint.identifier_count,
                 request.source_kind, request.partition)
    href = _operation_href(req, version, operation_id)
    return _json(202, {"id": operation_id, "href": href}, location=href)


@app.route(route="v{version}/export", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_export(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /v{n}/export[?dryRun=true]: export from the default partition (see `_start`)."""
    return await _start(req, client, DEFAULT_PARTITION)


@app.route(route="v{version}/partitions/{partition}/export", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_partition_export(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /v{n}/partitions/{partition}/export[?dryRun=true]: export from one data partition (see `_start`)."""
    return await _start(req, client, req.route_params.get("partition", ""))


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
        state = await read_export(client, operation_id, ORCHESTRATOR, version)
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


@app.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False, use_monitor=True)
@app.durable_client_input(client_name="client")
async def sweep_orphaned_exports(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Every 30 minutes: delete the work containers of exports that ended or no longer exist, after a grace period."""
    swept = await sweep_orphaned_work(lambda operation_id: export_runtime_status(client, operation_id, ORCHESTRATOR))
    logging.info("Sweep of work containers: %d examined, %d deleted", swept.examined, swept.deleted)


@app.route(route=UNKNOWN_ROUTE, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def unknown_route(req: func.HttpRequest) -> func.HttpResponse:
    """Any path outside the versioned API: 404 naming /v1 and /v2 (registered last, and named to sort last)."""
    path = urlsplit(req.url).path or "/"
    return _text(404, f"There is no endpoint at {req.method} {path[:200]}. The export API's paths start with its "
                      "version, /v1 or /v2: POST /v2/export, then GET or DELETE /v2/operations/{id} "
                      "(or the same under /v1).")
