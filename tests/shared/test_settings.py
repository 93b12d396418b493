"""App settings: defaults, checks and store selection."""
import base64

import pytest

from shared.errors import ServiceConfigurationError
from shared.settings import ExportSettings, StoreSettings


def test_defaults():
    settings = ExportSettings.from_environment({})
    assert (settings.batch_size, settings.batches_in_flight, settings.copies_per_batch) == (100, 4, 8)
    assert settings.sealing_key is None


@pytest.mark.parametrize("name,value,message", [
    ("EXPORT_BATCH_SIZE", "abc", "App setting EXPORT_BATCH_SIZE must be a whole number from 1 to 500, not 'abc'."),
    ("EXPORT_BATCHES_IN_FLIGHT", "0", "App setting EXPORT_BATCHES_IN_FLIGHT must be a whole number from 1 to 16, not '0'."),
    ("EXPORT_SEALING_KEY", base64.b64encode(b"short").decode(),
     "App setting EXPORT_SEALING_KEY must be 32 bytes encoded in base64."),
])
def test_malformed_settings_name_themselves(name, value, message):
    with pytest.raises(ServiceConfigurationError) as error:
        ExportSettings.from_environment({name: value})
    assert str(error.value) == message


def test_store_prefers_dicom_store_then_identity_then_webjobs_storage():
    assert StoreSettings.from_environment({"DICOM_STORE": "a", "AzureWebJobsStorage": "b"}).connection_string == "a"
    identity = StoreSettings.from_environment({"DICOM_STORE__blobServiceUri": "https://s.blob.core.windows.net",
                                              "DICOM_STORE__clientId": "cid", "AzureWebJobsStorage": "b",
                                              "DICOM_STORE_CONTAINER": "images"})
    assert (identity.service_uri, identity.client_id, identity.container) == (
        "https://s.blob.core.windows.net", "cid", "images")
    assert StoreSettings.from_environment({"AzureWebJobsStorage": "b"}) == StoreSettings("dicom", connection_string="b")
    with pytest.raises(ServiceConfigurationError, match="No DICOM store is configured"):
        StoreSettings.from_environment({})
