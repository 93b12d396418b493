"""Credentials go to allowed hosts only: nothing connects to an unlisted host, and no redirect is followed.

Every server here listens on loopback: the allowed one on 127.0.0.1 (listed by the test session), the one that
must never be reached on 127.0.0.2 (not listed), which counts every connection it is offered.
"""
import asyncio
import ssl
import tempfile

import aiohttp.connector
import azure.identity.aio
import pytest
from aiohttp import web

from tests.azurite import write_self_signed_certificate
from tests.export_client import export_body, post_export
from tests.test_managed_identity import StandInIdentity

VALID_ID = "1.2.840.10008.1"
URI = "The field 'destination.settings.blobContainerUri'"


class Trap:
    """A TCP listener on 127.0.0.2 that accepts nothing but a count of who knocked."""

    def __init__(self):
        self.connections = 0
        self.server = None

    async def start(self) -> "Trap":
        async def knocked(reader, writer):
            self.connections += 1
            writer.close()
        self.server = await asyncio.start_server(knocked, "127.0.0.2", 0)
        return self

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def close(self):
        self.server.close()
        await self.server.wait_closed()


class Redirector:
    """An HTTP(S) server on 127.0.0.1 answering every request with a redirect; records the requests' headers."""

    def __init__(self, status: int, location: str, tls: ssl.SSLContext = None):
        self.status, self.location, self.tls = status, location, tls
        self.authorizations = []
        self.runner = None
        self.port = 0

    async def start(self) -> "Redirector":
        async def reply(request):
            self.authorizations.append(request.headers.get("Authorization"))
            return web.Response(status=self.status, headers={"Location": self.location})
        server = web.Application()
        server.router.add_route("*", "/{tail:.*}", reply)
        self.runner = web.AppRunner(server)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        await self.runner.cleanup()


@pytest.fixture
def trap(loop):
    started = loop.run_until_complete(Trap().start())
    yield started
    loop.run_until_complete(started.close())


@pytest.fixture
def identity(monkeypatch):
    monkeypatch.setenv("EXPORT_IDENTITY_CLIENT_ID", "destination-identity-client-id")
    StandInIdentity.made_for = []
    tokens = []

    class CountingIdentity(StandInIdentity):
        async def get_token(self, *scopes, **kwargs):
            token = await super().get_token(*scopes, **kwargs)
            tokens.append(token.token)
            return token

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", CountingIdentity)
    monkeypatch.setattr(azure.identity.aio, "ManagedIdentityCredential", CountingIdentity)
    return tokens


@pytest.fixture
def tls(monkeypatch):
    """A server-side TLS context for 127.0.0.1 whose certificate the storage client trusts, for this test only."""
    folder = tempfile.mkdtemp(prefix="tls-")
    certificate, key = write_self_signed_certificate(folder)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certificate, key)
    monkeypatch.setattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", ssl.create_default_context(cafile=certificate))
    return server


def _answer(loop, host, settings):
    before = set(host.instances)
    response = post_export(loop, host, export_body([VALID_ID], settings))
    assert set(host.instances) == before
    return response.status_code, response.get_body().decode()


def test_an_unlisted_host_is_never_contacted(loop, host, trap):
    settings = {"blobContainerUri": f"http://127.0.0.2:{trap.port}/devstoreaccount1/exports?sv=1&sig=secret"}
    assert _answer(loop, host, settings) == (
        400, f"{URI} points at '127.0.0.2:{trap.port}', which is not an allowed "
             "destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert trap.connections == 0


def test_a_managed_identity_token_is_not_even_requested_for_an_unlisted_host(loop, host, trap, identity):
    settings = {"blobContainerUri": f"https://127.0.0.2:{trap.port}/devstoreaccount1/exports",
                "useManagedIdentity": True}
    assert _answer(loop, host, settings) == (
        400, f"{URI} points at '127.0.0.2:{trap.port}', which is not an allowed "
             "destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert (identity, trap.connections) == ([], 0)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_400_and_is_not_followed(loop, host, trap, status):
    redirector = loop.run_until_complete(
        Redirector(status, f"http://127.0.0.2:{trap.port}/devstoreaccount1/exports/x").start())
    try:
        got = _answer(loop, host, {"blobContainerUri":
                                   f"http://127.0.0.1:{redirector.port}/devstoreaccount1/exports?sv=1&sig=secret"})
    finally:
        loop.run_until_complete(redirector.close())
    assert got == (400, f"Azure Blob Storage container 'exports' in account 'devstoreaccount1' did not take the write "
                        f"({status}): check that the URL or connection string points at Azure Blob Storage; if the "
                        "account is busy, try again.")
    assert len(redirector.authorizations) == 1
    assert trap.connections == 0


def test_a_managed_identity_token_goes_to_the_allowed_host_only(loop, host, trap, identity, tls):
    redirector = loop.run_until_complete(
        Redirector(307, f"https://127.0.0.2:{trap.port}/devstoreaccount1/exports/x", tls).start())
    try:
        got = _answer(loop, host, {"blobContainerUri": f"https://127.0.0.1:{redirector.port}/devstoreaccount1/exports",
                                   "useManagedIdentity": True})
    finally:
        loop.run_until_complete(redirector.close())
    assert got == (400, "Azure Blob Storage container 'exports' in account 'devstoreaccount1' did not take the write "
                        "(307): check that the URL or connection string points at Azure Blob Storage; if the "
                        "account is busy, try again.")
    assert len(identity) == 1 and redirector.authorizations == [f"Bearer {identity[0]}"]
    assert trap.connections == 0
