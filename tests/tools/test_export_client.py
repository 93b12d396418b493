"""The export client command, run as a real process against the app served through the host stand-in."""
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.dicom_samples import new_uid
from tests.export_client import container_settings
from tools.export_client import UsageError, _parser, request_body

ROOT = Path(__file__).resolve().parent.parent.parent
FUNCTION_KEY = "test-function-key"


class ServedHost:
    """The host stand-in behind a loopback HTTP server, as `func start` serves the app: a request without the
    function key gets the host's 401; an export that starts runs at once, as the Durable extension would run it."""

    def __init__(self, host):
        self.host, self.runs, self.deletes = host, [], asyncio.Event()

    async def _forward(self, request: web.Request) -> web.Response:
        if request.headers.get("x-functions-key") != FUNCTION_KEY:
            return web.Response(status=401)
        answer = await self.host.request(request.method, request.path_qs, await request.read(),
                                         dict(request.headers))
        if request.method == "POST" and answer.status_code == 202:
            self.runs.append(asyncio.ensure_future(self.host.run(json.loads(answer.get_body())["id"])))
        if request.method == "DELETE":
            self.deletes.set()
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
        return web.Response(status=answer.status_code, body=answer.get_body(), headers=headers,
                            content_type=answer.mimetype, charset=answer.charset)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.saved_base, self.host.public_base = self.host.public_base, self.url
        return self.url

    async def stop(self) -> None:
        await asyncio.gather(*self.runs)
        self.host.public_base = self.saved_base
        await self._runner.cleanup()


@pytest.fixture
def served(loop, host):
    server = ServedHost(host)
    loop.run_until_complete(server.start())
    yield server
    loop.run_until_complete(server.stop())


async def _client(args, served, stdin=b"", env_key=FUNCTION_KEY, during=None):
    env = {**os.environ, "EXPORT_API_URL": served.url, "PYTHONUNBUFFERED": "1"}
    env.pop("EXPORT_FUNCTION_KEY", None)
    if env_key:
        env["EXPORT_FUNCTION_KEY"] = env_key
    # A shell's background job starts with SIGINT ignored, and a child would inherit that: give it the default back
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "tools.export_client", "--interval", "0.05",
                                                   *args, cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if during:
        during(process)
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    return process.returncode, out.decode(), err.decode()


def _destination_args(azurite, destination):
    settings = container_settings(azurite, destination.container_name)
    return ["--connection-string", settings["connectionString"], "--container", settings["blobContainerName"]]


def test_the_client_follows_an_export_to_its_summary_and_exits_0(loop, azurite, destination, put_instance, served):
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    unknown = new_uid()
    code, out, err = loop.run_until_complete(_client(
        [study, unknown, *_destination_args(azurite, destination), "--progress"], served))
    lines = out.splitlines()
    operation_id = lines[0].split()[2].rstrip(":")
    href = f"{served.url}/v2/operations/{operation_id}"
    assert (code, lines) == (0, [
        f"Started export {operation_id}: {href}",
        f"Export {operation_id} succeeded: exported 1, skipped 1",
        f"  errors.log: {destination.url}/{operation_id}/errors.log",
        f"  manifest:   {destination.url}/{operation_id}/manifest.jsonl"]), err
    assert "100%" in err and "exported 1, skipped 1" in err and "instances/s" in err  # the bar, forced on


def test_a_failed_export_exits_1_with_its_reason(loop, host, azurite, destination, put_instance, served):
    put_instance(study := new_uid(), new_uid(), new_uid())
    host.before_activity = lambda name, request, attempt: destination.delete_container() \
        if name == "resolve_batches" and attempt == 1 else None
    code, out, _ = loop.run_until_complete(_client([study, *_destination_args(azurite, destination)], served))
    assert code == 1
    assert out.splitlines()[1].endswith("failed: exported 0, skipped 0")
    assert out.splitlines()[-1].startswith("  error: Azure Blob Storage container")


@pytest.mark.parametrize("reply,exit_code", [(b"y\n", 1), (b"n\n", 130)])
def test_ctrl_c_asks_whether_to_cancel_and_a_yes_sends_delete(loop, host, azurite, destination, put_instance, served,
                                                             reply, exit_code):
    put_instance(study := new_uid(), new_uid(), new_uid())
    client = {}

    async def interrupt_the_client(name, request, attempt):
        if name == "copy_batch" and attempt == 1:
            client["process"].send_signal(signal.SIGINT)
            if reply == b"y\n":
                await asyncio.wait_for(served.deletes.wait(), 60)
            else:
                await asyncio.sleep(0.5)

    host.before_activity = interrupt_the_client
    code, out, _ = loop.run_until_complete(_client(
        [study, *_destination_args(azurite, destination)], served, stdin=reply,
        during=lambda process: client.update(process=process)))
    operation_id = out.splitlines()[0].split()[2].rstrip(":")
    assert code == exit_code, out
    assert f"Cancel export {operation_id}? [y/N]" in out
    if reply == b"y\n":
        assert f"Export {operation_id} canceled: exported 0, skipped 0" in out
        assert host.instances[operation_id].runtime_status == "Terminated"
    else:
        assert f"The export goes on; its status: {served.url}/v2/operations/{operation_id}" in out
        assert not served.deletes.is_set()


def test_a_missing_or_wrong_function_key_exits_2_saying_the_export_did_not_start(loop, azurite, destination, served):
    code, out, err = loop.run_until_complete(_client([new_uid(), *_destination_args(azurite, destination)], served,
                                                     env_key=None))
    assert (code, out, err) == (2, "", "The export was not started (401): \n")
    code, _, _ = loop.run_until_complete(_client([new_uid(), *_destination_args(azurite, destination),
                                                  "--key", FUNCTION_KEY], served, env_key="wrong"))
    assert code == 0  # the flag wins over the environment


def test_a_dry_run_prints_the_counts_and_exports_nothing(loop, host, azurite, destination, put_instance, served):
    study = new_uid()
    size = len(put_instance(study, new_uid(), new_uid()))
    before = set(host.instances)
    code, out, _ = loop.run_until_complete(_client(
        ["--dry-run", study, new_uid(), *_destination_args(azurite, destination)], served))
    assert (code, out) == (0, "Dry run (identifiers, partition Microsoft.Default): would export 1 instances in 1 "
                              f"series of 1 studies, {size:,} bytes; 1 would be skipped. Nothing was exported.\n")
    assert set(host.instances) == before and list(destination.list_blobs()) == []


def test_a_request_file_and_flags_make_the_body(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"source": {"type": "identifiers", "settings": {"values": ["1.2"]}},
                                   "destination": {"type": "azureBlob", "settings": {"blobContainerUri": "https://a/c"}}}))
    parse = _parser().parse_args
    assert request_body(parse(["--request", str(request)]))["source"]["settings"]["values"] == ["1.2"]
    assert "source" not in request_body(parse(["--request", str(request), "--all"]))
    assert request_body(parse(["--request", str(request), "--filter", "StudyDate=20240101-20240131",
                               "--filter", "ModalitiesInStudy=CT,MR"]))["source"] == {
        "type": "query", "settings": {"filters": {"StudyDate": "20240101-20240131", "ModalitiesInStudy": "CT,MR"}}}
    assert request_body(parse(["1.2.3", "--container-uri", "https://a/c", "--managed-identity"]))["destination"] == {
        "type": "azureBlob", "settings": {"blobContainerUri": "https://a/c", "useManagedIdentity": True}}
    for argv, message in [(["1.2", "--all", "--container-uri", "u"], "give identifiers, --all or --filter, not several"),
                          (["--container-uri", "u"], "name what to export: identifiers, --all, --filter "
                                                     "KEYWORD=VALUE or --request FILE"),
                          (["1.2"], "name the destination: --container-uri, or --connection-string with --container"),
                          (["--filter", "StudyDate", "--container-uri", "u"],
                           "--filter takes KEYWORD=VALUE, e.g. --filter ModalitiesInStudy=CT")]:
        with pytest.raises(UsageError) as error:
            request_body(parse(argv))
        assert str(error.value) == message
