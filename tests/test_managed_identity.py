"""Managed-identity destinations end to end, on an HTTPS Azurite that checks bearer tokens.

Azure AD cannot exist here, so the identity is a stand-in credential that issues the kind of token Azure AD
would (audience https://storage.azure.com, an sts.windows.net issuer, an expiry); Azurite's `--oauth basic`
checks exactly those claims. The test trusts the emulator's self-signed certificate as a developer would.
"""
import base64
import json
import ssl
import time

import aiohttp.connector
import azure.identity.aio
import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from tests.azurite import Azurite
from tests.dicom_samples import new_uid
from tests.export_client import export_body, get_operation, post_export, run_export

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _segment(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class StandInIdentity:
    """Issues Azure-AD-shaped storage tokens; records which client id it was made for."""

    made_for = []
    audience = "https://storage.azure.com"

    def __init__(self, client_id=None, **kwargs):
        StandInIdentity.made_for.append(client_id)

    async def get_token(self, *scopes, **kwargs):
        now = int(time.time())
        claims = {"aud": self.audience, "iss": f"https://sts.windows.net/{TENANT}/", "tid": TENANT,
                  "oid": "00000000-0000-0000-0000-0000000000aa", "iat": now - 60, "nbf": now - 60, "exp": now + 3600}
        return AccessToken(f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(claims)}.c2lnbmF0dXJl", now + 3600)

    async def close(self):
        pass


@pytest.fixture(scope="module")
def https_azurite():
    """A second, HTTPS-only Azurite accepting OAuth, whose certificate this module's tests (only) trust."""
    emulator = Azurite(oauth=True).start()
    default_context = aiohttp.connector._SSL_CONTEXT_VERIFIED
    trusting = ssl.create_default_context(cafile=emulator.certificate)
    aiohttp.connector._SSL_CONTEXT_VERIFIED = trusting
    yield emulator
    aiohttp.connector._SSL_CONTEXT_VERIFIED = default_context
    emulator.close()


@pytest.fixture
def identity(monkeypatch):
    """The stand-in credential in place of Azure's, and an identity for destinations configured."""
    monkeypatch.setenv("EXPORT_IDENTITY_CLIENT_ID", "destination-identity-client-id")
    StandInIdentity.made_for = []
    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", StandInIdentity)
    monkeypatch.setattr(azure.identity.aio, "ManagedIdentityCredential", StandInIdentity)
    return StandInIdentity


@pytest.fixture
def identity_destination(https_azurite):
    service = BlobServiceClient.from_connection_string(https_azurite.connection_string,
                                                       connection_verify=https_azurite.certificate)
    container = service.get_container_client(f"mi-{new_uid()[-12:].replace('.', '')}")
    container.create_container()
    return container


def test_export_with_managed_identity_to_another_account(loop, host, https_azurite, identity, identity_destination,
                                                         put_instance, monkeypatch):
    monkeypatch.setenv("EXPORT_IDENTITY_CLIENT_ID", "user-assigned-client-id")
    study, series = new_uid(), new_uid()
    data = {sop: put_instance(study, series, sop) for sop in (new_uid(), new_uid())}
    uri = f"{https_azurite.blob_endpoint}/{identity_destination.container_name}"

    state = run_export(loop, host, export_body([study], {"blobContainerUri": uri, "useManagedIdentity": True}))

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 2, 0)
    assert state["results"]["errorHref"] == f"{uri}/{operation_id}/errors.log"
    for sop, expected in data.items():
        name = f"{operation_id}/results/{study}/{series}/{sop}.dcm"
        assert identity_destination.download_blob(name).readall() == expected
    assert set(identity.made_for) == {"user-assigned-client-id"}


def test_a_token_storage_rejects_is_a_400(loop, host, https_azurite, identity, identity_destination, monkeypatch):
    monkeypatch.setattr(StandInIdentity, "audience", "https://management.azure.com")
    uri = f"{https_azurite.blob_endpoint}/{identity_destination.container_name}"
    response = post_export(loop, host, export_body([new_uid()], {"blobContainerUri": uri, "useManagedIdentity": True}))
    assert (response.status_code, response.get_body().decode()) == (
        400, f"Unable to authenticate to Azure Blob Storage container '{identity_destination.container_name}' in "
             "account 'devstoreaccount1' (403 AuthenticationFailed): check that the SAS token is complete and not "
             "expired, or that the service's managed identity is enabled.")


NO_DESTINATION_IDENTITY = (
    "The field 'destination.settings.useManagedIdentity' cannot be true: this service has no identity for "
    "destinations (app setting EXPORT_IDENTITY_CLIENT_ID is not set). Give 'blobContainerUri' with a SAS token "
    "instead.")


def test_without_an_identity_for_destinations_the_app_never_writes_as_its_own(loop, host, https_azurite, identity,
                                                                              identity_destination, monkeypatch):
    monkeypatch.delenv("EXPORT_IDENTITY_CLIENT_ID")
    uri = f"{https_azurite.blob_endpoint}/{identity_destination.container_name}"
    before = set(host.instances)
    response = post_export(loop, host, export_body([new_uid()], {"blobContainerUri": uri, "useManagedIdentity": True}))
    assert (response.status_code, response.get_body().decode()) == (400, NO_DESTINATION_IDENTITY)
    assert (identity.made_for, set(host.instances), list(identity_destination.list_blobs())) == ([], before, [])


def test_a_running_export_that_loses_its_identity_for_destinations_fails_saying_so(
        loop, host, https_azurite, identity, identity_destination, put_instance, monkeypatch):
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    uri = f"{https_azurite.blob_endpoint}/{identity_destination.container_name}"
    response = post_export(loop, host, export_body([study], {"blobContainerUri": uri, "useManagedIdentity": True}))
    assert response.status_code == 202, response.get_body()
    operation_id = json.loads(response.get_body())["id"]
    monkeypatch.delenv("EXPORT_IDENTITY_CLIENT_ID")

    loop.run_until_complete(host.run(operation_id))

    status, state, _ = get_operation(loop, host, operation_id)
    assert (status, state["status"], state["results"]["exported"]) == (200, "failed", 0)
    assert state["errors"] == ["The export service is misconfigured: App setting EXPORT_IDENTITY_CLIENT_ID is not set; "
                               "useManagedIdentity destinations need the client id of the identity for destinations."]
    assert set(identity.made_for) == {"destination-identity-client-id"}  # never the app's DefaultAzureCredential
