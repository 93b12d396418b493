"""errors.log: JSON lines with camelCase keys, appended in few blocks."""
import json
from datetime import datetime, timezone

from azure.storage.blob.aio import ContainerClient

from shared.destination.error_log import MAX_APPEND_BYTES, ErrorLog, create_error_log, error_line


def test_line_format():
    line = error_line("1.2/3.4", "The specified series cannot be found.", datetime(2026, 1, 2, 3, 4, 5, 6, timezone.utc))
    assert line == (b'{"timestamp": "2026-01-02T03:04:05.000006Z", "identifier": "1.2/3.4", '
                    b'"error": "The specified series cannot be found."}\n')


def test_flush_appends_all_lines_in_blocks_of_at_most_4_mib(loop, azurite, destination):
    error = "x" * 1000
    count = (MAX_APPEND_BYTES // 1000) + 50

    async def write():
        async with ContainerClient.from_connection_string(azurite.connection_string,
                                                          destination.container_name) as container:
            await create_error_log(container, "op")
            log = ErrorLog(container, "op")
            for i in range(count):
                log.add(f"1.{i}", error)
            await log.flush()
            await log.flush()  # nothing left: no empty append

    loop.run_until_complete(write())
    blob = destination.get_blob_client("op/errors.log")
    assert blob.get_blob_properties().append_blob_committed_block_count == 2
    lines = blob.download_blob().readall().decode().splitlines()
    assert [json.loads(line)["identifier"] for line in lines] == [f"1.{i}" for i in range(count)]
