"""What an export logs at the host's default level (Information): the operation id, counts, modes and durations, and
no DICOM UID, storage URL, account name or Azure SDK HTTP trace; EXPORT_DETAILED_LOGS=true adds UIDs and SDK lines."""
import logging

import pytest

from shared.log_setup import DETAIL_LOGGER
from tests.dicom_samples import new_uid
from tests.export_client import container_settings, export_body, run_export
from tests.log_levels import detailed_logs

HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


@pytest.fixture
def detailed(host):
    """EXPORT_DETAILED_LOGS=true as the app reads it when it starts (after the host imported the app)."""
    with detailed_logs():
        yield


def _export_at_info(loop, host, azurite, destination, put_instance, caplog):
    """Run an export of two stored instances and one unknown series with every logger at INFO; return what it
    names (operation id, UIDs) and every captured line."""
    caplog.set_level(logging.INFO)
    study, series, unknown_study, unknown_series = new_uid(), new_uid(), new_uid(), new_uid()
    sops = [new_uid(), new_uid()]
    for sop in sops:
        put_instance(study, series, sop)
    state = run_export(loop, host, export_body([study, f"{unknown_study}/{unknown_series}"],
                                               container_settings(azurite, destination.container_name)))
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 2, 1)
    lines = [(record.name, record.levelno, record.getMessage()) for record in caplog.records]
    return state["operationId"], [study, series, unknown_study, unknown_series, *sops], lines, caplog.text


def test_default_logs_carry_the_operation_id_and_no_uid_url_account_or_sdk_trace(loop, host, azurite, destination,
                                                                                   put_instance, caplog):
    operation_id, uids, lines, text = _export_at_info(loop, host, azurite, destination, put_instance, caplog)
    forbidden = [*uids, destination.url, f"{azurite.blob_endpoint}/dicom", f"127.0.0.1:{azurite.port}",
                 "devstoreaccount1"]
    assert [(name, message) for name, _, message in lines
            if any(value in message for value in forbidden)] == []
    assert not any(value in text for value in forbidden)
    assert [(name, message) for name, level, message in lines if name.startswith("azure") and level < logging.WARNING
            ] == []
    app_lines = [message for name, _, message in lines if name == "root" and operation_id in message]
    assert any(message.startswith(f"Export {operation_id} started: 2 ") for message in app_lines)
    assert any(message.startswith(f"Export {operation_id} copied batch 0 in ") and
               message.endswith(": 2 exported, 0 skipped, mode copy-from-url") for message in app_lines)
    assert f"Export {operation_id} ended; its working files are deleted" in app_lines


def test_detailed_logs_name_each_instance_and_show_the_sdk_requests(loop, host, azurite, destination, put_instance,
                                                                     caplog, detailed):
    operation_id, uids, lines, _ = _export_at_info(loop, host, azurite, destination, put_instance, caplog)
    study, series, unknown_study, unknown_series, *sops = uids
    detail = sorted(message for name, _, message in lines if name == DETAIL_LOGGER)
    assert [message.split(" {")[0] for message in detail if " copied " in message] == [
        f"Export {operation_id} batch 0 copied"] * 2
    assert sorted(sop for sop in sops if any(sop in message for message in detail)) == sorted(sops)
    assert (f"Export {operation_id} skipped {unknown_study}/{unknown_series}: The specified series cannot be found."
            in detail)
    requests = [message for name, _, message in lines if name == HTTP_LOGGER]
    assert any(f"/{study}/{series}/" in message for message in requests)
