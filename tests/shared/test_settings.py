"""App settings: defaults, checks and store selection."""
import base64

import pytest

from shared.errors import ServiceConfigurationError
from shared.settings import DicomWebSettings, ExportSettings, StoreSettings


def test_defaults():
    settings = ExportSettings.from_environment({})
    assert (settings.batch_size, settings.batches_in_flight, settings.copies_per_batch) == (250, 4, 8)
    assert (settings.batch_max_bytes, settings.detailed_logs) == (2 * 1024 ** 3, False)
    assert settings.sealing_key is None


def test_batch_max_bytes_and_detailed_logs_are_read():
    settings = ExportSettings.from_environment({"EXPORT_BATCH_MAX_BYTES": "1048576", "EXPORT_DETAILED_LOGS": " TRUE "})
    assert (settings.batch_max_bytes, settings.detailed_logs) == (1048576, True)
    assert ExportSettings.from_environment({"EXPORT_BATCH_MAX_BYTES": str(64 * 1024 ** 3),
                                            "EXPORT_DETAILED_LOGS": "false"}).batch_max_bytes == 64 * 1024 ** 3


@pytest.mark.parametrize("name,value,message", [
    ("EXPORT_BATCH_SIZE", "abc", "App setting EXPORT_BATCH_SIZE must be a whole number from 1 to 500, not 'abc'."),
    ("EXPORT_BATCHES_IN_FLIGHT", "0", "App setting EXPORT_BATCHES_IN_FLIGHT must be a whole number from 1 to 16, not '0'."),
    ("EXPORT_BATCH_MAX_BYTES", "1048575", "App setting EXPORT_BATCH_MAX_BYTES must be a whole number from 1048576 "
                                          "to 68719476736, not '1048575'."),
    ("EXPORT_BATCH_MAX_BYTES", "2GiB", "App setting EXPORT_BATCH_MAX_BYTES must be a whole number from 1048576 "
                                       "to 68719476736, not '2GiB'."),
    ("EXPORT_DETAILED_LOGS", "yes", "App setting EXPORT_DETAILED_LOGS must be true or false, not 'yes'."),
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


def test_dicomweb_store_is_chosen_by_dicom_store_type():
    settings = StoreSettings.from_environment({"DICOM_STORE_TYPE": "DICOMweb", "AzureWebJobsStorage": "b",
                                               "DICOMWEB_URL": "https://ws-dicom.dicom.azurehealthcareapis.com/v2/"})
    assert settings.dicomweb == DicomWebSettings("https://ws-dicom.dicom.azurehealthcareapis.com/v2")
    assert settings.connection_string is None
    assert StoreSettings.from_environment({"DICOM_STORE_TYPE": "blob", "DICOM_STORE": "a"}).dicomweb is None


def test_dicomweb_auth_settings():
    url = {"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://dicom.example.org/dicom-web"}
    basic = StoreSettings.from_environment({**url, "DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "u",
                                            "DICOMWEB_PASSWORD": "hunter2-x", "EXPORT_COPIES_PER_BATCH": "16",
                                            "EXPORT_BATCHES_IN_FLIGHT": "2"}).dicomweb
    # one pool per worker: 16 activities × 16 copies each; with 8 copies, 16 × the 8 listings a resolve reads ahead
    assert (basic.auth, basic.username, basic.password, basic.connections) == ("basic", "u", "hunter2-x", 256)
    assert "hunter2-x" not in repr(basic)
    identity = StoreSettings.from_environment({**url, "DICOMWEB_AUTH": "identity", "DICOMWEB_CLIENT_ID": "cid"}).dicomweb
    assert identity.connections == 128
    assert (identity.auth, identity.scope, identity.client_id) == (
        "identity", "https://dicom.healthcareapis.azure.com/.default", "cid")
    scoped = StoreSettings.from_environment({**url, "DICOMWEB_AUTH": "identity", "DICOMWEB_SCOPE": "api://x/.default"})
    assert scoped.dicomweb.scope == "api://x/.default"
    loopback = StoreSettings.from_environment({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "http://127.0.0.1:8042/dicom-web",
                                               "DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "u", "DICOMWEB_PASSWORD": "p"})
    assert loopback.dicomweb.url == "http://127.0.0.1:8042/dicom-web"


@pytest.mark.parametrize("env,message", [
    ({"DICOM_STORE_TYPE": "orthanc"}, "App setting DICOM_STORE_TYPE must be blob or dicomweb, not 'orthanc'."),
    ({"DICOM_STORE_TYPE": "dicomweb"},
     "App setting DICOMWEB_URL is not set; with DICOM_STORE_TYPE dicomweb it must hold the DICOMweb service root, "
     "for example https://<workspace>-<service>.dicom.azurehealthcareapis.com/v2."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "ftp://host/dicom-web"},
     "App setting DICOMWEB_URL must be an http or https URL of the DICOMweb service root with no query, "
     "not 'ftp://host/dicom-web'."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host/dicom-web?x=1"},
     "App setting DICOMWEB_URL must be an http or https URL of the DICOMweb service root with no query, "
     "not 'https://host/dicom-web?x=1'."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://user:secret@host/dicom-web"},
     "App setting DICOMWEB_URL must not contain credentials; use DICOMWEB_AUTH basic with DICOMWEB_USERNAME and "
     "DICOMWEB_PASSWORD."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host", "DICOMWEB_AUTH": "oauth"},
     "App setting DICOMWEB_AUTH must be none, basic or identity, not 'oauth'."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host", "DICOMWEB_AUTH": "basic"},
     "App setting DICOMWEB_USERNAME must be set when DICOMWEB_AUTH is basic."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host", "DICOMWEB_AUTH": "basic",
      "DICOMWEB_USERNAME": "u"}, "App setting DICOMWEB_PASSWORD must be set when DICOMWEB_AUTH is basic."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host", "DICOMWEB_AUTH": "basic",
      "DICOMWEB_USERNAME": "a:b", "DICOMWEB_PASSWORD": "p"}, "App setting DICOMWEB_USERNAME must not contain ':'."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "http://dicom.example.org", "DICOMWEB_AUTH": "identity"},
     "App setting DICOMWEB_URL must use https when DICOMWEB_AUTH is identity, so that credentials are not sent in "
     "clear (plain http is allowed for loopback hosts only)."),
    ({"DICOM_STORE_TYPE": "dicomweb", "DICOMWEB_URL": "https://host", "EXPORT_COPIES_PER_BATCH": "65"},
     "App setting EXPORT_COPIES_PER_BATCH must be a whole number from 1 to 64, not '65'."),
])
def test_malformed_dicomweb_settings_name_themselves(env, message):
    with pytest.raises(ServiceConfigurationError) as error:
        StoreSettings.from_environment(env)
    assert str(error.value) == message


def test_work_container_prefix_defaults_and_is_checked():
    from shared.settings import WorkSettings
    assert WorkSettings.from_environment({"AzureWebJobsStorage": "b"}).container == "dicom-export"
    assert WorkSettings.from_environment({"AzureWebJobsStorage": "b",
                                          "EXPORT_WORK_CONTAINER_PREFIX": "exp-2"}).container == "exp-2"
    for bad in ("Export", "ex", "a--b", "work-", "-work", "w" * 31, "work_files"):
        with pytest.raises(ServiceConfigurationError) as error:
            WorkSettings.from_environment({"AzureWebJobsStorage": "b", "EXPORT_WORK_CONTAINER_PREFIX": bad})
        assert str(error.value) == (
            "App setting EXPORT_WORK_CONTAINER_PREFIX must be 3 to 30 lowercase letters, digits and single hyphens, "
            f"starting and ending with a letter or digit, not '{bad}'.")
    assert WorkSettings.from_environment({"AzureWebJobsStorage": "b",
                                          "EXPORT_WORK_CONTAINER_PREFIX": "w" * 30}).container == "w" * 30
