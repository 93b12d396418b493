"""The completion event's CloudEvents body and its Standard Webhooks signature."""
import base64
import json

from shared.notification.completion_event import CompletionEvent, webhook_signature
from shared.settings import NotifySettings


def test_the_signature_matches_the_standard_webhooks_reference_vector():
    secret = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_event_is_a_structured_cloud_event_carrying_the_status():
    status = {"operationId": "ab" * 16, "status": "failed", "errors": ["x"]}
    event = CompletionEvent("ab" * 16, "e1", "2026-11-30T00:00:00.000000Z", "https://app.example", status)
    assert json.loads(event.body()) == {
        "specversion": "1.0", "type": "dicom.export.failed", "source": "https://app.example",
        "subject": f"/operations/{'ab' * 16}", "id": "e1", "time": "2026-11-30T00:00:00.000000Z",
        "datacontenttype": "application/json", "data": status}
    assert CompletionEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_notify_settings_read_each_mode():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    base = {"EXPORT_NOTIFY_URL": "https://topic.westeurope-1.eventgrid.azure.net/api/events",
            "EXPORT_ALLOWED_DESTINATION_HOSTS": "*.eventgrid.azure.net"}
    assert NotifySettings.from_environment({}) == NotifySettings()
    webhook = NotifySettings.from_environment({**base, "EXPORT_NOTIFY_SECRET": secret})
    assert (webhook.auth, webhook.secret) == ("webhook", b"k" * 32)
    keyed = NotifySettings.from_environment({**base, "EXPORT_NOTIFY_AUTH": "AEG-SAS-KEY", "EXPORT_NOTIFY_KEY": "k1"})
    assert (keyed.auth, keyed.key, keyed.secret) == ("aeg-sas-key", "k1", None)
    identity = NotifySettings.from_environment({**base, "EXPORT_NOTIFY_AUTH": "identity",
                                                "EXPORT_NOTIFY_CLIENT_ID": "c1"})
    assert (identity.auth, identity.client_id) == ("identity", "c1")
    assert "k1" not in repr(keyed) and "k" * 32 not in repr(webhook)
