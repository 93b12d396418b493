"""Completion events: one signed CloudEvent per ended export (succeeded, failed, canceled), to a real local receiver."""
import base64
import json

import pytest

from orchestrators.notification import NOTIFY_RETRY
from shared.settings import NOTIFY_ATTEMPTS
from tests.dicom_samples import new_uid
from tests.export_client import container_settings, export_body, get_operation, post_export
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()


@pytest.fixture
def receiver(loop, monkeypatch):
    """A receiver on loopback that the app's EXPORT_NOTIFY_URL points at, signing with SECRET."""
    server = loop.run_until_complete(WebhookReceiver(SECRET).start())
    monkeypatch.setenv("EXPORT_NOTIFY_URL", server.url)
    monkeypatch.setenv("EXPORT_NOTIFY_SECRET", SECRET)
    yield server
    loop.run_until_complete(server.stop())


def _start(loop, host, azurite, destination, values):
    response = post_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)))
    assert response.status_code == 202, response.get_body().decode()
    return json.loads(response.get_body())["id"]


def _run(loop, host, azurite, destination, values):
    operation_id = _start(loop, host, azurite, destination, values)
    loop.run_until_complete(host.run(operation_id))
    return operation_id, get_operation(loop, host, operation_id)


def _the_status_in(event, state):
    """The event's data is the v2 status body, but for the fields that change once it is sent."""
    changing = ("lastUpdatedTime", "notification")
    return {k: v for k, v in event["data"].items() if k not in changing} == \
        {k: v for k, v in state.items() if k not in changing}


def test_a_succeeded_export_sends_one_signed_cloud_event_with_its_status(loop, host, azurite, destination,
                                                                          put_instance, receiver):
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    operation_id, (code, state, _) = _run(loop, host, azurite, destination, [study, new_uid()])

    assert (code, state["status"], state["notification"]) == (200, "succeeded", "delivered")
    [delivery] = receiver.deliveries
    assert delivery.signature_valid is True
    assert delivery.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    event = delivery.event
    assert {k: event[k] for k in ("specversion", "type", "source", "subject", "datacontenttype")} == {
        "specversion": "1.0", "type": "dicom.export.succeeded", "source": "http://localhost:7071",
        "subject": f"/operations/{operation_id}", "datacontenttype": "application/json"}
    assert delivery.headers["webhook-id"] == event["id"] and len(event["id"]) >= 32
    assert event["time"].endswith("Z") and event["time"] >= state["createdTime"]
    assert event["data"]["results"] == {**state["results"], "exported": 1, "skipped": 1}
    assert _the_status_in(event, state) and "errors" not in event["data"]


def test_a_failed_export_sends_a_failed_event_with_its_reason(loop, host, azurite, destination, put_instance,
                                                              receiver):
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    destination.delete_container()
    loop.run_until_complete(host.run(operation_id))
    code, state, _ = get_operation(loop, host, operation_id)
    assert (code, state["status"], state["notification"]) == (200, "failed", "delivered")
    [delivery] = receiver.deliveries
    assert (delivery.signature_valid, delivery.event["type"]) == (True, "dicom.export.failed")
    assert delivery.event["data"]["errors"] == state["errors"] and state["errors"][0].startswith("Azure Blob Storage")
    assert _the_status_in(delivery.event, state)


def test_a_canceled_export_sends_a_canceled_event_from_its_notifier(loop, host, azurite, destination, put_instance,
                                                                     receiver):
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    answer = loop.run_until_complete(host.request("DELETE", f"/v1/operations/{operation_id}"))
    canceled = json.loads(answer.get_body())
    assert (answer.status_code, canceled["status"], canceled["notification"]) == (200, "canceled", "pending")
    assert receiver.deliveries == []  # the notifier delivers it, with retries, after the answer

    loop.run_until_complete(host.run(f"{operation_id}-notification"))
    loop.run_until_complete(host.run(operation_id))
    code, state, _ = get_operation(loop, host, operation_id)
    assert (code, state["status"], state["notification"]) == (200, "canceled", "delivered")
    [delivery] = receiver.deliveries
    assert (delivery.signature_valid, delivery.event["type"]) == (True, "dicom.export.canceled")
    assert delivery.event["subject"] == f"/operations/{operation_id}"
    assert _the_status_in(delivery.event, state)


def test_a_receiver_that_keeps_failing_is_retried_then_given_up_without_changing_the_outcome(
        loop, host, azurite, destination, put_instance, receiver, caplog):
    receiver.answers = [503]
    study, series = new_uid(), new_uid()
    put_instance(study, series, new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    seen = []

    async def look_while_delivering(name, request, attempt):
        if name == "notify_export" and attempt == 2:
            seen.append(get_status_now(operation_id))
            seen.append(await host.request("DELETE", f"/v2/operations/{operation_id}"))

    def get_status_now(operation_id):
        return host.instances[operation_id].custom_status

    host.before_activity = look_while_delivering
    loop.run_until_complete(host.run(operation_id))
    code, state, _ = get_operation(loop, host, operation_id)

    assert (code, state["status"], state["results"]["exported"], state["notification"]) == (
        200, "succeeded", 1, "failed")
    assert len(receiver.deliveries) == NOTIFY_ATTEMPTS
    assert {d.headers["webhook-id"] for d in receiver.deliveries} == {receiver.deliveries[0].event["id"]}
    assert all(d.signature_valid for d in receiver.deliveries)
    assert seen[0]["outcome"] == "succeeded" and seen[0]["notification"] == "pending"
    assert (seen[1].status_code, seen[1].get_body().decode()) == (
        409, f"The export operation '{operation_id}' has already ended (succeeded) and cannot be canceled.")
    assert caplog.text.count(f"Export {operation_id}: 127.0.0.1:{receiver.port} answered 503") == NOTIFY_ATTEMPTS
    assert "receiver-key" not in caplog.text


def test_while_its_event_is_delivered_the_status_already_reads_succeeded(loop, host, azurite, destination,
                                                                          put_instance, receiver):
    put_instance(study := new_uid(), new_uid(), new_uid())
    operation_id = _start(loop, host, azurite, destination, [study])
    answers = []

    async def poll(name, request, attempt):
        if name == "notify_export":
            answers.append(await host.request("GET", f"/v1/operations/{operation_id}"))

    host.before_activity = poll
    loop.run_until_complete(host.run(operation_id))
    body = json.loads(answers[0].get_body())
    assert (answers[0].status_code, body["status"], body["notification"], answers[0].headers.get("Location")) == (
        200, "completed", "pending", None)


def test_a_receiver_refusing_the_event_is_not_retried(loop, host, azurite, destination, put_instance, receiver):
    receiver.answers = [401]
    put_instance(study := new_uid(), new_uid(), new_uid())
    _, (_, state, _) = _run(loop, host, azurite, destination, [study])
    assert (state["status"], state["notification"], len(receiver.deliveries)) == ("succeeded", "failed", 1)


def test_an_event_grid_topic_gets_its_access_key_and_no_signature(loop, host, azurite, destination, put_instance,
                                                                  receiver, monkeypatch):
    receiver.secret = None
    monkeypatch.delenv("EXPORT_NOTIFY_SECRET")
    monkeypatch.setenv("EXPORT_NOTIFY_AUTH", "aeg-sas-key")
    monkeypatch.setenv("EXPORT_NOTIFY_KEY", "topic-key-1")
    put_instance(study := new_uid(), new_uid(), new_uid())
    _, (_, state, _) = _run(loop, host, azurite, destination, [study])
    [delivery] = receiver.deliveries
    assert (state["notification"], delivery.headers["aeg-sas-key"], delivery.event["type"]) == (
        "delivered", "topic-key-1", "dicom.export.succeeded")
    assert "webhook-signature" not in delivery.headers


def test_without_a_notify_url_nothing_is_sent_and_the_status_has_no_notification(loop, host, azurite, destination,
                                                                                 put_instance):
    put_instance(study := new_uid(), new_uid(), new_uid())
    operation_id, (_, state, _) = _run(loop, host, azurite, destination, [study])
    assert "notification" not in state and json.loads(host.instances[operation_id].input)["notify"] is False


@pytest.mark.parametrize("settings,message", [
    ({"EXPORT_NOTIFY_URL": "http://127.0.0.2:8080/hook", "EXPORT_NOTIFY_SECRET": SECRET},
     "App setting EXPORT_NOTIFY_URL points at '127.0.0.2:8080', which is not an allowed destination host (app "
     "setting EXPORT_ALLOWED_DESTINATION_HOSTS)."),
    ({"EXPORT_NOTIFY_URL": "http://127.0.0.1:8080/hook"},
     "App setting EXPORT_NOTIFY_SECRET must be set when EXPORT_NOTIFY_AUTH is webhook (the default is webhook)."),
    ({"EXPORT_NOTIFY_URL": "http://127.0.0.1:8080/hook", "EXPORT_NOTIFY_SECRET": "whsec_c2hvcnQ="},
     "App setting EXPORT_NOTIFY_SECRET must be 'whsec_' followed by 24 to 64 random bytes in base64."),
    ({"EXPORT_NOTIFY_URL": "http://127.0.0.1:8080/hook", "EXPORT_NOTIFY_AUTH": "aeg-sas-key"},
     "App setting EXPORT_NOTIFY_KEY must be set when EXPORT_NOTIFY_AUTH is aeg-sas-key (the default is webhook)."),
    ({"EXPORT_NOTIFY_URL": "http://127.0.0.1:8080/hook", "EXPORT_NOTIFY_AUTH": "basic"},
     "App setting EXPORT_NOTIFY_AUTH must be webhook, aeg-sas-key or identity, not 'basic'."),
])
def test_notification_settings_that_cannot_work_refuse_every_start_naming_the_setting(
        loop, host, azurite, destination, monkeypatch, settings, message):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    before = set(host.instances)
    response = post_export(loop, host, export_body([new_uid()], container_settings(azurite,
                                                                                   destination.container_name)))
    assert (response.status_code, response.get_body().decode()) == (
        500, f"The export service is misconfigured: {message}")
    assert set(host.instances) == before


def test_delivery_is_retried_with_exponential_backoff():
    assert NOTIFY_RETRY.to_json() == {"firstRetryIntervalInMilliseconds": 5000, "maxNumberOfAttempts": 5,
                                      "backoffCoefficient": 2, "maxRetryIntervalInMilliseconds": 60_000}


def test_an_event_grid_topic_reached_by_identity_gets_a_bearer_token_for_event_grid(
        loop, host, azurite, destination, put_instance, receiver, monkeypatch):
    import shared.notification.delivery
    from azure.core.credentials import AccessToken
    asked = []

    class Identity:
        async def get_token(self, *scopes):
            asked.append(scopes)
            return AccessToken("event-grid-token", 2_000_000_000)

    monkeypatch.setattr(shared.notification.delivery, "process_identity",
                        lambda client_id: asked.append(client_id) or Identity())
    monkeypatch.setenv("EXPORT_NOTIFY_AUTH", "identity")
    monkeypatch.setenv("EXPORT_NOTIFY_CLIENT_ID", "notify-client")
    put_instance(study := new_uid(), new_uid(), new_uid())
    _, (_, state, _) = _run(loop, host, azurite, destination, [study])
    [delivery] = receiver.deliveries
    assert (state["notification"], delivery.headers["authorization"], delivery.signature_valid) == (
        "delivered", "Bearer event-grid-token", True)
    assert asked == ["notify-client", ("https://eventgrid.azure.net/.default",)]
