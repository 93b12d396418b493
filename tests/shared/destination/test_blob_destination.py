"""Destination settings: parsing, names, and the managed identity credential."""
import azure.identity.aio

from shared.allowlist import DestinationAllowlist
from shared.destination.blob_destination import error_log_blob_name, result_blob_name
from shared.destination.validation import parse_destination
from shared.identifiers import DicomIdentifier


def test_result_and_error_log_paths():
    assert result_blob_name("op", DicomIdentifier("1", "2", "3")) == "op/results/1/2/3.dcm"
    assert error_log_blob_name("op") == "op/errors.log"


def test_sas_uri_error_href_drops_the_query():
    destination = parse_destination({"blobcontaineruri": "https://acct.blob.core.windows.net/exports?sv=1&sig=s"})
    assert destination.error_href("op") == "https://acct.blob.core.windows.net/exports/op/errors.log"
    assert destination.account_and_container == ("acct", "exports")


def test_emulator_connection_string_is_accepted():
    destination = parse_destination({"connectionstring": "UseDevelopmentStorage=true",
                                     "blobcontainername": "exports"}, DestinationAllowlist.parse("127.0.0.1"))
    assert destination.container_url == "http://127.0.0.1:10000/devstoreaccount1/exports"


def test_managed_identity_uses_the_configured_client_id(loop, monkeypatch):
    made = []

    class FakeIdentity:
        def __init__(self, client_id=None):
            made.append(client_id)
            self.closed = False

        async def get_token(self, *scopes, **kwargs):
            raise AssertionError("no token is needed to open a client")

        async def close(self):
            self.closed = True

    monkeypatch.setattr(azure.identity.aio, "ManagedIdentityCredential", FakeIdentity)
    destination = parse_destination({"blobcontaineruri": "https://acct.blob.core.windows.net/exports",
                                                 "usemanagedidentity": True})

    async def open_it():
        async with destination.open("client-id-1") as container:
            return container.credential

    credential = loop.run_until_complete(open_it())
    assert made == ["client-id-1"] and isinstance(credential, FakeIdentity) and credential.closed
