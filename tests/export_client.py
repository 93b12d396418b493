"""Test-side calls of the export API through the host stand-in: start an export, poll it, read what it wrote."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Dict, List, Optional

from tests.durable_host import DurableHost

JSON = {"Content-Type": "application/json"}


def export_body(values: List[Any], settings: Dict[str, Any]) -> Dict[str, Any]:
    """A request body in the documented shape."""
    return {"source": {"type": "identifiers", "settings": {"values": values}},
            "destination": {"type": "azureBlob", "settings": settings}}


def container_settings(azurite, container_name: str) -> Dict[str, Any]:
    """Destination settings naming an Azurite container by connection string."""
    return {"connectionString": azurite.connection_string, "blobContainerName": container_name}


def post_export(loop, host: DurableHost, body: Any, version: int = 2, headers: Optional[Dict[str, str]] = None):
    """POST /v{version}/export with a JSON (or raw bytes) body; returns the func.HttpResponse."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return loop.run_until_complete(host.request("POST", f"/v{version}/export?code=functionkey", raw,
                                                JSON if headers is None else headers))


def get_operation(loop, host: DurableHost, operation_id: str, version: int = 2):
    """GET /v{version}/operations/{id}; returns (status code, parsed body or text, headers)."""
    response = loop.run_until_complete(host.request("GET", f"/v{version}/operations/{operation_id}"))
    text = response.get_body().decode()
    body = json.loads(text) if response.mimetype == "application/json" else text
    return response.status_code, body, response.headers


def run_export(loop, host: DurableHost, body: Any, version: int = 2) -> Dict[str, Any]:
    """Start an export, run it to its end in the stand-in, and return the final operation body."""
    response = post_export(loop, host, body, version)
    assert response.status_code == 202, response.get_body().decode()
    operation_id = json.loads(response.get_body())["id"]
    loop.run_until_complete(host.run(operation_id))
    status, state, _ = get_operation(loop, host, operation_id, version)
    assert status == 200, state
    return state


def error_lines(container, operation_id: str) -> List[Dict[str, Any]]:
    """The operation's errors.log, parsed line by line."""
    text = container.download_blob(f"{operation_id}/errors.log").readall().decode()
    return [json.loads(line) for line in text.splitlines()]


def working_files(blob_service, operation_id: str) -> Optional[List[str]]:
    """The names in an operation's work container (default prefix), or None once the container is gone."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.export.work_store import work_container_name
    from shared.settings import DEFAULT_WORK_CONTAINER_PREFIX
    container = blob_service.get_container_client(work_container_name(DEFAULT_WORK_CONTAINER_PREFIX, operation_id))
    try:
        return [blob.name for blob in container.list_blobs()]
    except ResourceNotFoundError:
        return None


def manifest_entries(container, operation_id: str) -> List[Dict[str, Any]]:
    """The operation's manifest.jsonl, one dict per line."""
    text = container.download_blob(f"{operation_id}/manifest.jsonl").readall().decode()
    return [json.loads(line) for line in text.splitlines()]


def assert_manifest_matches(container, operation_id: str) -> List[Dict[str, Any]]:
    """Check the manifest lists every result file exactly once with its true size and MD5; return its entries."""
    entries = manifest_entries(container, operation_id)
    paths = [entry["path"] for entry in entries]
    stored = sorted(b.name for b in container.list_blobs(name_starts_with=f"{operation_id}/results/"))
    assert sorted(paths) == stored and len(set(paths)) == len(paths)
    for entry in entries:
        data = container.download_blob(entry["path"]).readall()
        assert entry["path"] == f"{operation_id}/results/{entry['identifier']}.dcm"
        assert (entry["size"], entry["md5"]) == (len(data), base64.b64encode(hashlib.md5(data).digest()).decode())
    return entries
