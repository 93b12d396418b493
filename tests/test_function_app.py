"""The export endpoint as the host runs it: the 202 answer, content types, and destination checks before starting."""
import datetime
import json

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from tests.azurite import ACCOUNT, KEY
from tests.export_client import container_settings, export_body, post_export
from tests.test_bad_requests import CONNECTION_STRING, URI, VALID_ID


@pytest.mark.parametrize("version", [1, 2])
def test_valid_request_answers_202_with_href_and_location(loop, host, azurite, destination, version):
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)),
                           version=version)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert len(body["id"]) == 32 and all(c in "0123456789abcdef" for c in body["id"])
    assert body["href"] == f"http://localhost:7071/v{version}/operations/{body['id']}"
    assert response.headers["Location"] == body["href"]
    assert host.instances[body["id"]].runtime_status == "Pending"
    assert destination.get_blob_client(f"{body['id']}/errors.log").get_blob_properties().blob_type == "AppendBlob"


def test_case_insensitive_names_and_types_are_accepted(loop, host, azurite, destination):
    body = {"SOURCE": {"Type": "IDENTIFIERS", "Settings": {"Values": [VALID_ID]}, "extra": 1},
            "Destination": {"TYPE": "azureblob", "settings": {
                "ConnectionString": azurite.connection_string, "BLOBCONTAINERNAME": destination.container_name,
                "unknownSetting": "ignored"}}, "comment": "ignored"}
    assert post_export(loop, host, body).status_code == 202


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/xml"}])
def test_non_json_content_type_is_415(loop, host, azurite, destination, headers):
    body = export_body([VALID_ID], container_settings(azurite, destination.container_name))
    response = post_export(loop, host, body, headers=headers)
    assert response.status_code == 415
    assert response.get_body().decode() == (
        f"The request's Content-Type must be application/json, not '{headers.get('Content-Type', '(none)')}'.")


def test_json_with_charset_is_accepted(loop, host, azurite, destination):
    body = export_body([VALID_ID], container_settings(azurite, destination.container_name))
    assert post_export(loop, host, body, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 202


def test_the_default_allowlist_refuses_the_local_emulator(loop, host, azurite, destination, monkeypatch):
    monkeypatch.delenv("EXPORT_ALLOWED_DESTINATION_HOSTS")
    assert _destination_answer(loop, host, container_settings(azurite, destination.container_name)) == (
        400, f"{CONNECTION_STRING} has a BlobEndpoint that points at '127.0.0.1:{azurite.port}', which is "
             "not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert _destination_answer(loop, host, {"connectionString": "UseDevelopmentStorage=true",
                                            "blobContainerName": "exports"}) == (
        400, f"{CONNECTION_STRING} has a blob endpoint that points at '127.0.0.1:10000', which is not an "
             "allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert _destination_answer(loop, host, {"blobContainerUri": f"http://localhost:{azurite.port}/devstoreaccount1/"
                                                                f"{destination.container_name}"}) == (
        400, f"{URI} points at 'localhost:{azurite.port}', which is not an allowed "
             "destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert list(destination.list_blobs()) == []


def test_a_listed_port_admits_only_that_port(loop, host, azurite, destination, monkeypatch):
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", f"127.0.0.1:{azurite.port}")
    assert post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name))
                       ).status_code == 202
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", f"127.0.0.1:{azurite.port + 3}")
    assert _destination_answer(loop, host, container_settings(azurite, destination.container_name)) == (
        400, f"{CONNECTION_STRING} has a BlobEndpoint that points at '127.0.0.1:{azurite.port}', which is "
             "not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")


def test_a_malformed_allowlist_is_500_naming_the_setting(loop, host, azurite, destination, monkeypatch):
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", "127.0.0.1,*")
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    assert (response.status_code, response.get_body().decode()) == (
        500, "The export service is misconfigured: App setting EXPORT_ALLOWED_DESTINATION_HOSTS has the entry '*', "
             "which is neither a host name, an IP address nor a '*.suffix' pattern (each optionally followed by "
             "':port').")


@pytest.mark.parametrize("status,content,answer", [
    (503, b"<Error><Code>ServerBusy</Code><Message>Busy.</Message></Error>", "503 ServerBusy"),
    (503, b"<Error><Code>ServerBusy</Code></Error>", "TypeError"),
    (200, b"<html>a web page</html>", "200"),
    (302, b"", "302"),
])
def test_an_endpoint_that_is_not_blob_storage_is_400(loop, host, status, content, answer):
    from aiohttp import web

    async def reply(request):
        headers = {"Location": "https://elsewhere.invalid/"} if status == 302 else {}
        if status == 503:
            headers["x-ms-error-code"] = "ServerBusy"
        return web.Response(status=status, body=content, headers=headers, content_type="application/xml")

    async def serve():
        server = web.Application()
        server.router.add_route("*", "/{tail:.*}", reply)
        runner = web.AppRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = loop.run_until_complete(serve())
    try:
        got = _destination_answer(loop, host, {"blobContainerUri": f"http://127.0.0.1:{port}/devstoreaccount1/exports"})
    finally:
        loop.run_until_complete(runner.cleanup())
    assert got == (400, f"Azure Blob Storage container 'exports' in account 'devstoreaccount1' did not take the write "
                        f"({answer}): check that the URL or connection string points at Azure Blob Storage; if the "
                        "account is busy, try again.")


def _destination_answer(loop, host, settings):
    before = set(host.instances)
    response = post_export(loop, host, export_body([VALID_ID], settings))
    assert set(host.instances) == before
    return response.status_code, response.get_body().decode()


def test_missing_container_is_400(loop, host, azurite):
    assert _destination_answer(loop, host, container_settings(azurite, "no-such-container")) == (
        400, "Azure Blob Storage container 'no-such-container' does not exist in account 'devstoreaccount1'.")


def _sas_uri(destination, permission, hours=1):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    sas = generate_container_sas(ACCOUNT, destination.container_name, account_key=KEY,
                                 permission=ContainerSasPermissions.from_string(permission), expiry=expiry)
    return f"{destination.url}?{sas}"


def test_read_only_sas_is_400_naming_the_missing_permission(loop, host, destination):
    status, message = _destination_answer(loop, host, {"blobContainerUri": _sas_uri(destination, "r")})
    assert status == 400
    assert message == (
        f"Not allowed to write to Azure Blob Storage container '{destination.container_name}' in account "
        "'devstoreaccount1' (403 AuthorizationPermissionMismatch): a SAS token needs the create, write and add "
        "permissions; a managed identity needs the 'Storage Blob Data Contributor' role.")


def test_expired_sas_is_400(loop, host, destination):
    status, message = _destination_answer(loop, host, {"blobContainerUri": _sas_uri(destination, "racw", hours=-1)})
    assert status == 400
    assert message == (
        f"Not authorized to write to Azure Blob Storage container '{destination.container_name}' in account "
        "'devstoreaccount1' (403 AuthorizationFailure): the SAS token may be expired or signed with the wrong key, "
        "or the account's network rules may block this service.")
    assert "sig=" not in message


def test_unreachable_endpoint_is_400(loop, host):
    settings = {"blobContainerUri": "http://127.0.0.1:9/devstoreaccount1/unreachable"}
    assert _destination_answer(loop, host, settings) == (
        400, "Cannot connect to Azure Blob Storage container 'unreachable' in account 'devstoreaccount1': check the "
             "account's endpoint and that it is reachable.")


def test_managed_identity_token_failure_is_400(loop, host, monkeypatch):
    import azure.identity.aio
    from azure.identity import CredentialUnavailableError

    class NoIdentity:
        def __init__(self, **kwargs):
            pass

        async def get_token(self, *scopes, **kwargs):
            raise CredentialUnavailableError("no managed identity endpoint is available")

        async def close(self):
            pass

    monkeypatch.setattr(azure.identity.aio, "ManagedIdentityCredential", NoIdentity)
    monkeypatch.setenv("EXPORT_IDENTITY_CLIENT_ID", "destination-identity-client-id")
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", "*.blob.core.windows.invalid")
    settings = {"blobContainerUri": "https://acct.blob.core.windows.invalid/exports", "useManagedIdentity": True}
    assert _destination_answer(loop, host, settings) == (
        400, "Unable to authenticate to Azure Blob Storage container 'exports' in account 'acct' with the service's "
             "managed identity: no managed identity endpoint is available")


def test_missing_sealing_key_is_500_naming_the_setting(loop, host, azurite, destination, monkeypatch):
    monkeypatch.delenv("EXPORT_SEALING_KEY")
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    assert response.status_code == 500
    assert response.get_body().decode().startswith(
        "The export service is misconfigured: App setting EXPORT_SEALING_KEY is not set;")


def test_the_sweep_runs_every_30_minutes_with_a_durable_client(indexed_functions):
    function = next(f for f in indexed_functions if f.get_function_name() == "sweep_orphaned_exports")
    bindings = {binding.type: {key: str(value) if key == "direction" else value
                               for key, value in binding.get_dict_repr().items()}
                for binding in function.get_bindings()}
    assert bindings == {
        "timerTrigger": {"type": "timerTrigger", "direction": "IN", "name": "timer", "schedule": "0 */30 * * * *",
                         "runOnStartup": False, "useMonitor": True},
        "durableClient": {"type": "durableClient", "direction": "IN", "name": "client"}}


def test_the_byte_bound_of_a_batch_reaches_the_orchestration(loop, host, azurite, destination, monkeypatch):
    monkeypatch.setenv("EXPORT_BATCH_MAX_BYTES", "5242880")
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    assert response.status_code == 202
    checkpoint = json.loads(host.instances[json.loads(response.get_body())["id"]].input)
    assert checkpoint["batching"] == {"batch_size": 250, "batches_in_flight": 4, "copies_per_batch": 8,
                                      "max_bytes": 5242880}
