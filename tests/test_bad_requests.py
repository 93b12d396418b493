"""Bad request bodies: each answers 400 with one exact message naming the field and value, and starts nothing."""
import pytest

from tests.azurite import KEY
from tests.export_client import export_body, post_export

VALID_ID = "1.2.840.10008.1"
URI = "The field 'destination.settings.blobContainerUri'"
CONNECTION_STRING = "The field 'destination.settings.connectionString'"
MANAGED_IDENTITY = "The field 'destination.settings.useManagedIdentity'"
CORPUS_ALLOWED_HOSTS = ("127.0.0.1,localhost,*.blob.core.windows.net,169.254.169.254,[fe80::1],fd00:ec2::254,"
                        "storage.example.invalid:8443,*.wild.invalid")


def answers_400(loop, host, body, message, monkeypatch):
    """Post `body` under the corpus allowlist; assert exactly `400 message` in plain text, and no operation started."""
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", CORPUS_ALLOWED_HOSTS)
    before = set(host.instances)
    response = post_export(loop, host, body)
    assert (response.status_code, response.get_body().decode()) == (400, message)
    assert response.mimetype == "text/plain"
    assert set(host.instances) == before


def bad_body(values=None, settings=None, **overrides):
    body = export_body([VALID_ID] if values is None else values,
                       settings if settings is not None else {"blobContainerUri": "https://acct.blob.core.windows.net/c1"})
    body.update(overrides)
    return body



LONG_UID = "1." + "2" * 63
BAD_REQUESTS = [
    ("not json", b"{not json", "The request body is not valid JSON: Expecting property name enclosed in double quotes "
                               "at line 1 column 2."),
    ("empty body", b"", "The request body is empty: send a JSON object with 'source' and 'destination'."),
    ("not utf-8", b"\xff\xfe{}", "The request body is not valid UTF-8 text."),
    ("json list", [1], "The request body must be a JSON object with 'source' and 'destination', not a list."),
    ("no source means everything, so the destination is checked", {"destination": {}},
     "The field 'destination.type' is missing; the only supported value is 'azureBlob'."),
    ("doc typo sources", {"sources": {}, "destination": {}},
     "The field 'source' is missing (did you mean it for 'sources'?): give "
     "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}, or leave out 'source' to export everything."),
    ("misspelt source", {"Sorce": {}, "destination": {}},
     "The field 'source' is missing (did you mean it for 'Sorce'?): give "
     "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}, or leave out 'source' to export everything."),
    ("source not object", {"source": "1.2", "destination": {}},
     "The field 'source' must be an object ({\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}), "
     "not \"1.2\"."),
    ("missing source type", {"source": {"settings": {"values": [VALID_ID]}}},
     "The field 'source.type' is missing; the supported values are 'identifiers' and 'query'."),
    ("misspelt source type", {"source": {"typ": "identifiers", "settings": {"values": [VALID_ID]}}},
     "The field 'source.type' is missing (did you mean it for 'typ'?); the supported values are 'identifiers' and "
     "'query'."),
    ("unknown source type", {"source": {"type": "studies", "settings": {}}},
     "The field 'source.type' is \"studies\", which is not supported; the supported values are 'identifiers' and "
     "'query'."),
    ("numeric source type", {"source": {"type": 1, "settings": {}}},
     "The field 'source.type' is 1, which is not supported; the supported values are 'identifiers' and 'query'."),
    ("missing source settings", {"source": {"type": "identifiers"}},
     "The field 'source.settings' is missing: give {\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}."),
    ("missing values", {"source": {"type": "identifiers", "settings": {}}},
     "The field 'source.settings.values' is missing: give a list of one or more identifiers in the format "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("misspelt values", {"source": {"type": "identifiers", "settings": {"value": [VALID_ID]}}},
     "The field 'source.settings.values' is missing (did you mean it for 'value'?): give a list of one or more "
     "identifiers in the format '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("empty values", bad_body(values=[]),
     "The field 'source.settings.values' is empty: give a list of one or more identifiers in the format "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("values not list", {"source": {"type": "identifiers", "settings": {"values": "1.2.3"}}},
     "The field 'source.settings.values' must be a list of strings, not \"1.2.3\"."),
    ("value not string", bad_body(values=[VALID_ID, 12]), "The field 'source.settings.values[1]' must be a string, not 12."),
    ("empty part", bad_body(values=["1.2/"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2/' is not valid: its series instance UID '' "
     "is not a valid UID because it is empty. The format is "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("four parts", bad_body(values=["1/2/3/4"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1/2/3/4' has 4 parts; the format is "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("letters", bad_body(values=["1.2.abc"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2.abc' is not valid: its study instance UID "
     "'1.2.abc' is not a valid UID because a UID is made of digits separated by single dots, with no other "
     "characters. The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("double dot", bad_body(values=["1..2"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1..2' is not valid: its study instance UID "
     "'1..2' is not a valid UID because a UID is made of digits separated by single dots, with no other characters. "
     "The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("uid too long", bad_body(values=[f"1.2/{LONG_UID}"]),
     f"The field 'source.settings.values[0]' is invalid. The identifier '1.2/{LONG_UID}' is not valid: its series "
     f"instance UID '{LONG_UID}' is not a valid UID because it is 65 characters long (at most 64 are allowed). "
     "The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("missing destination", {"source": {"type": "identifiers", "settings": {"values": [VALID_ID]}}},
     "The field 'destination' is missing: give {\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}."),
    ("unknown destination type", bad_body(destination={"type": "s3", "settings": {}}),
     "The field 'destination.type' is \"s3\", which is not supported; the only supported value is 'azureBlob'."),
    ("missing destination type", bad_body(destination={"settings": {}}),
     "The field 'destination.type' is missing; the only supported value is 'azureBlob'."),
    ("missing destination settings", bad_body(destination={"type": "azureBlob"}),
     "The field 'destination.settings' is missing: give "
     "{\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}."),
    ("neither uri nor connection string", bad_body(settings={"useManagedIdentity": True}),
     "The field 'destination.settings' must contain either 'blobContainerUri', or both 'connectionString' and "
     "'blobContainerName'."),
    ("misspelt container uri", bad_body(settings={"blobContainerUrl": "https://a.blob.core.windows.net/c1"}),
     "The field 'destination.settings' must contain either 'blobContainerUri', or both 'connectionString' and "
     "'blobContainerName' (did you mean 'blobContainerUri' for 'blobContainerUrl'?)."),
    ("uri and connection string", bad_body(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                                 "connectionString": "UseDevelopmentStorage=true"}),
     f"{URI} cannot be combined with 'connectionString' or "
     "'blobContainerName'; give either the container URI or the connection string and container name."),
    ("connection string without container", bad_body(settings={"connectionString": "UseDevelopmentStorage=true"}),
     "The field 'destination.settings.blobContainerName' is missing: a 'connectionString' needs the name of the "
     "container."),
    ("misspelt container name", bad_body(settings={"connectionString": "UseDevelopmentStorage=true",
                                               "blobContainerNmae": "c1"}),
     "The field 'destination.settings.blobContainerName' is missing (did you mean it for 'blobContainerNmae'?): a "
     "'connectionString' needs the name of the container."),
    ("container without connection string", bad_body(settings={"blobContainerName": "c1"}),
     f"{CONNECTION_STRING} is missing: 'blobContainerName' needs the connection string "
     "of its storage account (or give 'blobContainerUri' instead)."),
    ("misspelt connection string", bad_body(settings={"blobContainerName": "c1", "ConectionString": "x"}),
     f"{CONNECTION_STRING} is missing (did you mean it for 'ConectionString'?): "
     "'blobContainerName' needs the connection string of its storage account (or give 'blobContainerUri' instead)."),
    ("unrelated unknown property gets no hint", bad_body(settings={"connectionString": "UseDevelopmentStorage=true",
                                                               "comment": "c1"}),
     "The field 'destination.settings.blobContainerName' is missing: a 'connectionString' needs the name of the "
     "container."),
    ("http uri", bad_body(settings={"blobContainerUri": "http://acct.blob.core.windows.net/c1"}),
     f"{URI} must use https (plain http is only accepted for hosts listed by exact "
     "name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not "
     "'http://acct.blob.core.windows.net/c1'."),
    ("relative uri", bad_body(settings={"blobContainerUri": "acct/c1"}),
     f"{URI} must be an absolute https URL, not 'acct/c1'."),
    ("uri with user info", bad_body(settings={"blobContainerUri": "https://me:pw@acct.blob.core.windows.net/c1"}),
     f"{URI} must not carry a user name or password, but "
     "'me:pw@acct.blob.core.windows.net' does."),
    ("uri without container", bad_body(settings={"blobContainerUri": "https://acct.blob.core.windows.net/"}),
     f"{URI} is 'https://acct.blob.core.windows.net/', which does not name a "
     "container: "
     "give the container's URL, such as https://<account>.blob.core.windows.net/<container>."),
    ("bad container name", bad_body(settings={"blobContainerUri": "https://acct.blob.core.windows.net/Bad_Name"}),
     f"{URI} names the container 'Bad_Name', which is not a valid blob "
     "container name: use 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or "
     "digit."),
    ("uri not string", bad_body(settings={"blobContainerUri": 42}),
     f"{URI} must be a string, not 42."),
    ("managed identity with sas", bad_body(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1?sv=1&sig=x",
                                                 "useManagedIdentity": True}),
     f"{MANAGED_IDENTITY} cannot be true when 'blobContainerUri' carries a "
     "SAS token; remove the SAS or set useManagedIdentity to false."),
    ("managed identity with connection string", bad_body(settings={
        "connectionString": "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x",
        "blobContainerName": "c1", "useManagedIdentity": True}),
     f"{MANAGED_IDENTITY} cannot be used with a connectionString; give 'blobContainerUri' with "
     "useManagedIdentity instead."),
    ("managed identity not boolean", bad_body(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                                    "useManagedIdentity": "yes"}),
     f"{MANAGED_IDENTITY} must be true or false, not \"yes\"."),
    ("account key", bad_body(settings={
        "connectionString": "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=abc123;"
                            "EndpointSuffix=core.windows.net", "blobContainerName": "c1"}),
     f"{CONNECTION_STRING} holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("connection string garbage", bad_body(settings={"connectionString": "hello world", "blobContainerName": "c1"}),
     f"{CONNECTION_STRING} is not a valid Azure Storage connection string: the segment "
     "'hello world' is not of the form Name=Value."),
    ("connection string http endpoint", bad_body(settings={
        "connectionString": "BlobEndpoint=http://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x",
        "blobContainerName": "c1"}),
     f"{CONNECTION_STRING} has a BlobEndpoint that must use https (plain http is only accepted for "
     "hosts listed by exact name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage "
     "emulator), not 'http://a.blob.core.windows.net'."),
    ("uri and container name", bad_body(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                              "blobContainerName": "c1"}),
     f"{URI} cannot be combined with 'connectionString' or "
     "'blobContainerName'; give either the container URI or the connection string and container name."),
    ("uri below the container", bad_body(settings={"blobContainerUri": "https://acct.blob.core.windows.net/exports/sub/dir"}),
     f"{URI} is 'https://acct.blob.core.windows.net/exports/sub/dir', which has a path below the container; give "
     "the container's URL alone, such as https://<account>.blob.core.windows.net/<container>."),
    ("path-style uri without container", bad_body(settings={"blobContainerUri": "http://127.0.0.1:10000/devstoreaccount1"}),
     f"{URI} is 'http://127.0.0.1:10000/devstoreaccount1', which does not "
     "name a container: "
     "give the container's URL, such as https://<account>.blob.core.windows.net/<container>."),
    ("managed identity over http", bad_body(settings={"blobContainerUri": "http://127.0.0.1:10000/devstoreaccount1/exports",
                                                  "useManagedIdentity": True}),
     f"{MANAGED_IDENTITY} needs an https 'blobContainerUri', not "
     "'http://127.0.0.1:10000/devstoreaccount1/exports'."),
    ("malformed ipv6", bad_body(settings={"blobContainerUri": "https://[::1/exports"}),
     f"{URI} is not a valid URL: 'https://[::1/exports'."),
    ("bad port", bad_body(settings={"blobContainerUri": "https://acct.blob.core.windows.net:99999/exports"}),
     f"{URI} is not a valid URL: 'https://acct.blob.core.windows.net:99999/exports'."),
    ("metadata address", bad_body(settings={"blobContainerUri": "https://169.254.169.254/acct/exports"}),
     f"{URI} points at the link-local or metadata address '169.254.169.254', which "
     "is never allowed."),
    ("emulator account name with a remote endpoint and key", bad_body(settings={
        "connectionString": f"AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=https://evil.example.invalid",
        "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a BlobEndpoint that points at 'evil.example.invalid', which is not an "
     "allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS)."),
    ("emulator account name with an allowed remote endpoint and key", bad_body(settings={
        "connectionString": f"AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=https://a.blob.core.windows.net",
        "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("emulator account name over plain http to azure", bad_body(settings={
        "connectionString": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY}",
        "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("emulator key not base64", bad_body(settings={
        "connectionString": "AccountName=devstoreaccount1;AccountKey=not*base64;BlobEndpoint=http://127.0.0.1:10000/"
                            "devstoreaccount1", "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has an AccountKey that is not valid base64."),
    ("huge integer", b'{"source": {"type": "identifiers", "settings": {"values": [' + b"9" * 5000 + b']}}}',
     "The request body is not acceptable JSON: Exceeds the limit (4300 digits) for integer string conversion: "
     "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit"),
    ("lone surrogate", b'{"source": {"type": "identifiers", "settings": {"values": ["1.2\\ud800"]}}}',
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2\\ud800' is not valid: its study instance "
     "UID '1.2\\ud800' is not a valid UID because a UID is made of digits separated by single dots, with no other "
     "characters. The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("bad container name with connection string", bad_body(settings={
        "connectionString": "UseDevelopmentStorage=true", "blobContainerName": "ab"}),
     "The field 'destination.settings.blobContainerName' is 'ab', which is not a valid blob container name: use 3 "
     "to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit."),
]


@pytest.mark.parametrize("body,message", [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_400_with_its_message_and_starts_nothing(loop, host, body, message, monkeypatch):
    answers_400(loop, host, body, message, monkeypatch)
