"""The HTTP routes as the host indexes them: versions, the catch-all 404 outside /v1 and /v2, and polling hints."""
import json
import re

import azure.functions as func
import pytest

from function_app import UNKNOWN_ROUTE
from shared.api.cancellation_notice import NOTIFIER
from tests.export_client import JSON, container_settings, export_body, get_operation, post_export
from tests.test_bad_requests import VALID_ID


def test_index_has_exactly_the_export_functions(indexed_functions):
    found = {}
    for function in indexed_functions:
        bindings = function.get_bindings()
        trigger = next(b for b in bindings if b.type.endswith("Trigger"))
        http = (trigger.route, sorted(str(m.value) for m in trigger.methods), str(trigger.auth_level.value)) \
            if trigger.type == "httpTrigger" else None
        found[function.get_function_name()] = (trigger.type, http, sorted(b.type for b in bindings))
    assert found == {
        "start_export": ("httpTrigger", ("v{version}/export", ["POST"], "function"),
                         ["durableClient", "http", "httpTrigger"]),
        "start_partition_export": ("httpTrigger", ("v{version}/partitions/{partition}/export", ["POST"], "function"),
                                   ["durableClient", "http", "httpTrigger"]),
        "get_operation": ("httpTrigger", ("v{version}/operations/{operationId}", ["GET"], "function"),
                          ["durableClient", "http", "httpTrigger"]),
        "cancel_operation": ("httpTrigger", ("v{version}/operations/{operationId}", ["DELETE"], "function"),
                             ["durableClient", "http", "httpTrigger"]),
        "export_orchestrator": ("orchestrationTrigger", None, ["orchestrationTrigger"]),
        "resolve_batches": ("activityTrigger", None, ["activityTrigger"]),
        "end_export": ("activityTrigger", None, ["activityTrigger"]),
        "copy_batch": ("activityTrigger", None, ["activityTrigger"]),
        NOTIFIER: ("orchestrationTrigger", None, ["orchestrationTrigger"]),
        "notify_export": ("activityTrigger", None, ["activityTrigger"]),
        "sweep_orphaned_exports": ("timerTrigger", None, ["durableClient", "timerTrigger"]),
        "unknown_route": ("httpTrigger", (UNKNOWN_ROUTE, sorted(["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST",
                                                               "PUT"]), "function"), ["http", "httpTrigger"]),
    }
    names = [function.get_function_name() for function in indexed_functions]
    assert (names[-1], max(names)) == ("unknown_route", "unknown_route")  # last both in registration and by name


def test_host_json_routes_without_prefix():
    with open("host.json") as handle:
        assert json.load(handle)["extensions"]["http"]["routePrefix"] == ""


def test_unsupported_api_version_is_404(loop, host):
    response = loop.run_until_complete(host.request("POST", "/v3/export", b"{}", JSON))
    assert (response.status_code, response.get_body().decode()) == (
        404, "API version 'v3' is not supported; use v1 or v2.")


def test_polling_answers_carry_retry_after_until_the_export_ends(loop, host, azurite, store, destination):
    started = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    operation_id = json.loads(started.get_body())["id"]
    href = f"http://localhost:7071/v2/operations/{operation_id}"
    assert (started.status_code, started.headers["Location"], started.headers["Retry-After"]) == (202, href, "5")
    code, body, headers = get_operation(loop, host, operation_id)
    assert (code, body["status"], headers["Location"], headers["Retry-After"]) == (202, "notStarted", href, "5")
    loop.run_until_complete(host.run(operation_id))
    code, body, headers = get_operation(loop, host, operation_id)
    assert (code, body["status"], headers.get("Location"), headers.get("Retry-After")) == (200, "succeeded", None, None)


UNVERSIONED = ("The export API's paths start with its version, /v1 or /v2: POST /v2/export, then GET or DELETE "
               "/v2/operations/{id} (or the same under /v1).")


@pytest.mark.parametrize("method,path", [("POST", "/export"), ("GET", "/operations/0c4f2a8e"), ("GET", "/v2"),
                                         ("POST", "/api/v2/export"), ("PUT", "/v2/operations/0c4f2a8e/cancel")])
def test_a_path_outside_the_versioned_api_is_404_naming_v1_and_v2(loop, indexed_functions, method, path):
    function = next(f for f in indexed_functions if f.get_function_name() == "unknown_route")
    request = func.HttpRequest(method, f"http://localhost:7071{path}?code=functionkey", headers=JSON, body=b"{}")
    response = loop.run_until_complete(function.get_user_function()(req=request))
    assert (response.status_code, response.mimetype, response.get_body().decode()) == (
        404, "text/plain", f"There is no endpoint at {method} {path}. {UNVERSIONED}")


@pytest.mark.parametrize("method,path", [("POST", "/export"), ("GET", "/operations/0c4f2a8e"),
                                         ("POST", "/api/v2/export")])
def test_the_host_routes_unversioned_paths_to_the_404_and_versioned_ones_to_the_api(loop, host, method, path):
    response = loop.run_until_complete(host.request(method, path, b"{}", JSON))
    assert (response.status_code, response.get_body().decode()) == (
        404, f"There is no endpoint at {method} {path}. {UNVERSIONED}")
    versioned = loop.run_until_complete(host.request("GET", "/v2/operations/" + "0" * 32))
    assert (versioned.status_code, versioned.get_body().decode()) == (
        404, f"No export operation has the id '{'0' * 32}'.")


def _caught_by_unknown_route(path: str) -> bool:
    """Whether the host hands `path` to the catch-all: ASP.NET routing applies the route's regex constraint, ignoring
    case, to the catch-all value (the path without its leading slash); an empty value matches no constraint."""
    constraint = re.fullmatch(r"\{\*path:regex\((.*)\)\}", UNKNOWN_ROUTE).group(1)
    value = path.lstrip("/")
    return bool(value) and re.search(constraint, value, re.IGNORECASE) is not None


@pytest.mark.parametrize("path,caught", [
    ("/export", True), ("/operations/0c4f2a8e", True), ("/v2", True), ("/v2/export/more", True),
    ("/v1/operations/0c4f2a8e/cancel", True), ("/api/v2/export", True), ("/exports/v2/export", True),
    ("/v1/export", False), ("/v2/export", False), ("/V2/EXPORT", False), ("/v3/export", False), ("/v2/export/", False),
    ("/v1/operations/0c4f2a8e", False), ("/v2/operations/0c4f2a8e", False), ("/admin", False),
    ("/v2/partitions/Microsoft.Default/export", False), ("/v1/partitions/p-1/export/", False),
    ("/v2/partitions/export", True), ("/v2/partitions/a/b/export", True), ("/v2/partitions/p/export/x", True),
    ("/admin/host/status", False), ("/runtime/webhooks/durabletask/instances/0c4f2a8e", False), ("/", False),
])
def test_the_catch_all_route_leaves_versioned_and_host_routes_alone(path, caught):
    assert _caught_by_unknown_route(path) is caught
