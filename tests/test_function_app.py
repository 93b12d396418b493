"""The HTTP functions as the host runs them: the index, bad requests, destination checks, and the 202 answer."""
import datetime
import json

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from tests.azurite import ACCOUNT, KEY
from tests.export_client import JSON, container_settings, export_body, post_export

VALID_ID = "1.2.840.10008.1"


def test_index_has_exactly_the_export_functions(indexed_functions):
    found = {}
    for function in indexed_functions:
        bindings = function.get_bindings()
        trigger = next(b for b in bindings if b.type.endswith("Trigger"))
        http = (trigger.route, sorted(str(m.value) for m in trigger.methods), str(trigger.auth_level.value)) \
            if trigger.type == "httpTrigger" else None
        found[function.get_function_name()] = (trigger.type, http, sorted(b.type for b in bindings))
    assert found == {
        "start_export": ("httpTrigger", ("v{version}/export", ["POST"], "function"),
                         ["durableClient", "http", "httpTrigger"]),
        "get_operation": ("httpTrigger", ("v{version}/operations/{operationId}", ["GET"], "function"),
                          ["durableClient", "http", "httpTrigger"]),
        "cancel_operation": ("httpTrigger", ("v{version}/operations/{operationId}", ["DELETE"], "function"),
                             ["durableClient", "http", "httpTrigger"]),
        "export_orchestrator": ("orchestrationTrigger", None, ["orchestrationTrigger"]),
        "resolve_batches": ("activityTrigger", None, ["activityTrigger"]),
        "end_export": ("activityTrigger", None, ["activityTrigger"]),
        "copy_batch": ("activityTrigger", None, ["activityTrigger"]),
    }


def test_host_json_routes_without_prefix():
    with open("host.json") as handle:
        assert json.load(handle)["extensions"]["http"]["routePrefix"] == ""


@pytest.mark.parametrize("version", [1, 2])
def test_valid_request_answers_202_with_href_and_location(loop, host, azurite, destination, version):
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)),
                           version=version)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert len(body["id"]) == 32 and all(c in "0123456789abcdef" for c in body["id"])
    assert body["href"] == f"http://localhost:7071/v{version}/operations/{body['id']}"
    assert response.headers["Location"] == body["href"]
    assert host.instances[body["id"]].runtime_status == "Pending"
    assert destination.get_blob_client(f"{body['id']}/errors.log").get_blob_properties().blob_type == "AppendBlob"


def test_case_insensitive_names_and_types_are_accepted(loop, host, azurite, destination):
    body = {"SOURCE": {"Type": "IDENTIFIERS", "Settings": {"Values": [VALID_ID]}, "extra": 1},
            "Destination": {"TYPE": "azureblob", "settings": {
                "ConnectionString": azurite.connection_string, "BLOBCONTAINERNAME": destination.container_name,
                "unknownSetting": "ignored"}}, "comment": "ignored"}
    assert post_export(loop, host, body).status_code == 202


def _bad(values=None, settings=None, **overrides):
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
    ("missing source", {"destination": {}}, "The field 'source' is required: "
                                            "{\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}."),
    ("doc typo sources", {"sources": {}, "destination": {}},
     "The field 'source' is required; the body has 'sources' instead."),
    ("source not object", {"source": "1.2", "destination": {}},
     "The field 'source' must be an object ({\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}), "
     "not \"1.2\"."),
    ("missing source type", {"source": {"settings": {"values": [VALID_ID]}}},
     "The field 'source.type' is required; the only supported value is 'identifiers'."),
    ("unknown source type", {"source": {"type": "query", "settings": {}}},
     "The field 'source.type' is \"query\", which is not supported; the only supported value is 'identifiers'."),
    ("numeric source type", {"source": {"type": 1, "settings": {}}},
     "The field 'source.type' is 1, which is not supported; the only supported value is 'identifiers'."),
    ("missing source settings", {"source": {"type": "identifiers"}},
     "The field 'source.settings' is required: {\"type\": \"identifiers\", \"settings\": {\"values\": [...]}}."),
    ("missing values", {"source": {"type": "identifiers", "settings": {}}},
     "The field 'source.settings.values' is missing or empty: give a list of one or more identifiers in the format "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("empty values", _bad(values=[]),
     "The field 'source.settings.values' is missing or empty: give a list of one or more identifiers in the format "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("values not list", {"source": {"type": "identifiers", "settings": {"values": "1.2.3"}}},
     "The field 'source.settings.values' must be a list of strings, not \"1.2.3\"."),
    ("value not string", _bad(values=[VALID_ID, 12]), "The field 'source.settings.values[1]' must be a string, not 12."),
    ("empty part", _bad(values=["1.2/"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2/' is not valid: its series instance UID '' "
     "is not a valid UID because it is empty. The format is "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("four parts", _bad(values=["1/2/3/4"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1/2/3/4' has 4 parts; the format is "
     "'<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("letters", _bad(values=["1.2.abc"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2.abc' is not valid: its study instance UID "
     "'1.2.abc' is not a valid UID because a UID is made of digits separated by single dots, with no other "
     "characters. The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("double dot", _bad(values=["1..2"]),
     "The field 'source.settings.values[0]' is invalid. The identifier '1..2' is not valid: its study instance UID "
     "'1..2' is not a valid UID because a UID is made of digits separated by single dots, with no other characters. "
     "The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("uid too long", _bad(values=[f"1.2/{LONG_UID}"]),
     f"The field 'source.settings.values[0]' is invalid. The identifier '1.2/{LONG_UID}' is not valid: its series "
     f"instance UID '{LONG_UID}' is not a valid UID because it is 65 characters long (at most 64 are allowed). "
     "The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("missing destination", {"source": {"type": "identifiers", "settings": {"values": [VALID_ID]}}},
     "The field 'destination' is required: {\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}."),
    ("unknown destination type", _bad(destination={"type": "s3", "settings": {}}),
     "The field 'destination.type' is \"s3\", which is not supported; the only supported value is 'azureBlob'."),
    ("missing destination type", _bad(destination={"settings": {}}),
     "The field 'destination.type' is required; the only supported value is 'azureBlob'."),
    ("missing destination settings", _bad(destination={"type": "azureBlob"}),
     "The field 'destination.settings' is required: "
     "{\"type\": \"azureBlob\", \"settings\": {\"blobContainerUri\": ...}}."),
    ("neither uri nor connection string", _bad(settings={"useManagedIdentity": True}),
     "destination.settings must contain either 'blobContainerUri', or both 'connectionString' and "
     "'blobContainerName'."),
    ("uri and connection string", _bad(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                                 "connectionString": "UseDevelopmentStorage=true"}),
     "destination.settings: 'blobContainerUri' cannot be combined with 'connectionString' or 'blobContainerName'; "
     "give either the container URI or the connection string and container name."),
    ("connection string without container", _bad(settings={"connectionString": "UseDevelopmentStorage=true"}),
     "destination.settings.blobContainerName is missing: a 'connectionString' needs the name of the container."),
    ("container without connection string", _bad(settings={"blobContainerName": "c1"}),
     "destination.settings.connectionString is missing: 'blobContainerName' needs the connection string of its "
     "storage account (or give 'blobContainerUri' instead)."),
    ("http uri", _bad(settings={"blobContainerUri": "http://acct.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri must use https (plain http is only accepted for hosts listed by exact "
     "name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not "
     "'http://acct.blob.core.windows.net/c1'."),
    ("relative uri", _bad(settings={"blobContainerUri": "acct/c1"}),
     "destination.settings.blobContainerUri must be an absolute https URL, not 'acct/c1'."),
    ("uri with user info", _bad(settings={"blobContainerUri": "https://me:pw@acct.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri must not carry a user name or password, but "
     "'me:pw@acct.blob.core.windows.net' does."),
    ("uri without container", _bad(settings={"blobContainerUri": "https://acct.blob.core.windows.net/"}),
     "destination.settings.blobContainerUri 'https://acct.blob.core.windows.net/' does not name a container: "
     "give the container's URL, such as https://<account>.blob.core.windows.net/<container>."),
    ("bad container name", _bad(settings={"blobContainerUri": "https://acct.blob.core.windows.net/Bad_Name"}),
     "The container in destination.settings.blobContainerUri 'Bad_Name' is not a valid blob container name: use 3 to "
     "63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit."),
    ("uri not string", _bad(settings={"blobContainerUri": 42}),
     "destination.settings.blobContainerUri must be a string, not 42."),
    ("managed identity with sas", _bad(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1?sv=1&sig=x",
                                                 "useManagedIdentity": True}),
     "destination.settings.useManagedIdentity cannot be true when destination.settings.blobContainerUri carries a "
     "SAS token; remove the SAS or set useManagedIdentity to false."),
    ("managed identity with connection string", _bad(settings={
        "connectionString": "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x",
        "blobContainerName": "c1", "useManagedIdentity": True}),
     "destination.settings.useManagedIdentity cannot be used with a connectionString; give 'blobContainerUri' with "
     "useManagedIdentity instead."),
    ("managed identity not boolean", _bad(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                                    "useManagedIdentity": "yes"}),
     "destination.settings.useManagedIdentity must be true or false, not \"yes\"."),
    ("account key", _bad(settings={
        "connectionString": "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=abc123;"
                            "EndpointSuffix=core.windows.net", "blobContainerName": "c1"}),
     "destination.settings.connectionString holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("connection string garbage", _bad(settings={"connectionString": "hello world", "blobContainerName": "c1"}),
     "destination.settings.connectionString is not a valid Azure Storage connection string: the segment "
     "'hello world' is not of the form Name=Value."),
    ("connection string http endpoint", _bad(settings={
        "connectionString": "BlobEndpoint=http://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x",
        "blobContainerName": "c1"}),
     "The BlobEndpoint in destination.settings.connectionString must use https (plain http is only accepted for "
     "hosts listed by exact name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage "
     "emulator), not 'http://a.blob.core.windows.net'."),
    ("uri and container name", _bad(settings={"blobContainerUri": "https://a.blob.core.windows.net/c1",
                                              "blobContainerName": "c1"}),
     "destination.settings: 'blobContainerUri' cannot be combined with 'connectionString' or 'blobContainerName'; "
     "give either the container URI or the connection string and container name."),
    ("uri below the container", _bad(settings={"blobContainerUri": "https://acct.blob.core.windows.net/exports/sub/dir"}),
     "destination.settings.blobContainerUri 'https://acct.blob.core.windows.net/exports/sub/dir' has a path below the "
     "container; give the container's URL alone, such as https://<account>.blob.core.windows.net/<container>."),
    ("path-style uri without container", _bad(settings={"blobContainerUri": "http://127.0.0.1:10000/devstoreaccount1"}),
     "destination.settings.blobContainerUri 'http://127.0.0.1:10000/devstoreaccount1' does not name a container: "
     "give the container's URL, such as https://<account>.blob.core.windows.net/<container>."),
    ("managed identity over http", _bad(settings={"blobContainerUri": "http://127.0.0.1:10000/devstoreaccount1/exports",
                                                  "useManagedIdentity": True}),
     "destination.settings.useManagedIdentity needs an https destination.settings.blobContainerUri, not "
     "'http://127.0.0.1:10000/devstoreaccount1/exports'."),
    ("malformed ipv6", _bad(settings={"blobContainerUri": "https://[::1/exports"}),
     "destination.settings.blobContainerUri is not a valid URL: 'https://[::1/exports'."),
    ("bad port", _bad(settings={"blobContainerUri": "https://acct.blob.core.windows.net:99999/exports"}),
     "destination.settings.blobContainerUri is not a valid URL: 'https://acct.blob.core.windows.net:99999/exports'."),
    ("metadata address", _bad(settings={"blobContainerUri": "https://169.254.169.254/acct/exports"}),
     "destination.settings.blobContainerUri points at the link-local or metadata address '169.254.169.254', which "
     "is never allowed."),
    ("emulator account name with a remote endpoint and key", _bad(settings={
        "connectionString": f"AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=https://evil.example.invalid",
        "blobContainerName": "exports"}),
     "The BlobEndpoint in destination.settings.connectionString points at 'evil.example.invalid', which is not an "
     "allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS)."),
    ("emulator account name with an allowed remote endpoint and key", _bad(settings={
        "connectionString": f"AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=https://a.blob.core.windows.net",
        "blobContainerName": "exports"}),
     "destination.settings.connectionString holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("emulator account name over plain http to azure", _bad(settings={
        "connectionString": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY}",
        "blobContainerName": "exports"}),
     "destination.settings.connectionString holds an AccountKey: account key authentication is not supported. Use a "
     "SAS token (SharedAccessSignature=...) or blobContainerUri with useManagedIdentity."),
    ("emulator key not base64", _bad(settings={
        "connectionString": "AccountName=devstoreaccount1;AccountKey=not*base64;BlobEndpoint=http://127.0.0.1:10000/"
                            "devstoreaccount1", "blobContainerName": "exports"}),
     "The AccountKey in destination.settings.connectionString is not valid base64."),
    ("huge integer", b'{"source": {"type": "identifiers", "settings": {"values": [' + b"9" * 5000 + b']}}}',
     "The request body is not acceptable JSON: Exceeds the limit (4300 digits) for integer string conversion: "
     "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit"),
    ("lone surrogate", b'{"source": {"type": "identifiers", "settings": {"values": ["1.2\\ud800"]}}}',
     "The field 'source.settings.values[0]' is invalid. The identifier '1.2\\ud800' is not valid: its study instance "
     "UID '1.2\\ud800' is not a valid UID because a UID is made of digits separated by single dots, with no other "
     "characters. The format is '<study instance UID>[/<series instance UID>[/<SOP instance UID>]]'."),
    ("bad container name with connection string", _bad(settings={
        "connectionString": "UseDevelopmentStorage=true", "blobContainerName": "ab"}),
     "destination.settings.blobContainerName 'ab' is not a valid blob container name: use 3 to 63 lowercase letters, "
     "digits and single hyphens, starting and ending with a letter or digit."),
]

NOT_ALLOWED = "which is not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS)."
NEVER = "which is never allowed."
SAS_SEGMENT = "SharedAccessSignature=sv=1&sig=x"
ALLOWLIST_CASES = [
    ("unlisted host", _bad(settings={"blobContainerUri": "https://acct.blob.core.windows.invalid/c1"}),
     f"destination.settings.blobContainerUri points at 'acct.blob.core.windows.invalid', {NOT_ALLOWED}"),
    ("suffix pattern needs a label before it", _bad(settings={"blobContainerUri": "https://blob.core.windows.net/c1"}),
     f"destination.settings.blobContainerUri points at 'blob.core.windows.net', {NOT_ALLOWED}"),
    ("allowed name as a prefix of another domain", _bad(settings={
        "blobContainerUri": "https://evil.blob.core.windows.net.attacker.invalid/c1"}),
     f"destination.settings.blobContainerUri points at 'evil.blob.core.windows.net.attacker.invalid', {NOT_ALLOWED}"),
    ("unlisted loopback address", _bad(settings={"blobContainerUri": "http://127.0.0.2:10000/devstoreaccount1/c1"}),
     f"destination.settings.blobContainerUri points at '127.0.0.2:10000', {NOT_ALLOWED}"),
    ("unlisted private address", _bad(settings={"blobContainerUri": "https://10.0.0.1/acct/c1"}),
     f"destination.settings.blobContainerUri points at '10.0.0.1', {NOT_ALLOWED}"),
    ("unlisted ipv6 loopback", _bad(settings={"blobContainerUri": "http://[::1]:10000/devstoreaccount1/c1"}),
     f"destination.settings.blobContainerUri points at '[::1]:10000', {NOT_ALLOWED}"),
    ("listed host on another port", _bad(settings={"blobContainerUri": "https://storage.example.invalid:9443/c1"}),
     f"destination.settings.blobContainerUri points at 'storage.example.invalid:9443', {NOT_ALLOWED}"),
    ("listed host on its default port when a port is listed", _bad(settings={
        "blobContainerUri": "https://storage.example.invalid/c1"}),
     f"destination.settings.blobContainerUri points at 'storage.example.invalid', {NOT_ALLOWED}"),
    ("http to a host allowed by a pattern", _bad(settings={"blobContainerUri": "http://acct.wild.invalid/c1"}),
     "destination.settings.blobContainerUri must use https (plain http is only accepted for hosts listed by exact "
     "name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not "
     "'http://acct.wild.invalid/c1'."),
    ("ftp scheme", _bad(settings={"blobContainerUri": "ftp://acct.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri must be an absolute https URL, not 'ftp://acct.blob.core.windows.net/c1'."),
    ("file scheme", _bad(settings={"blobContainerUri": "file:///etc/passwd"}),
     "destination.settings.blobContainerUri must be an absolute https URL, not 'file:///etc/passwd'."),
    ("user info hiding the real host", _bad(settings={
        "blobContainerUri": "https://acct.blob.core.windows.net@evil.invalid/c1"}),
     "destination.settings.blobContainerUri must not carry a user name or password, but "
     "'acct.blob.core.windows.net@evil.invalid' does."),
    ("backslash before the host", _bad(settings={
        "blobContainerUri": "https://evil.invalid\\@acct.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri is not a valid URL: 'https://evil.invalid\\@acct.blob.core.windows.net/c1'."),
    ("percent-encoded host", _bad(settings={"blobContainerUri": "https://evil.invalid%2f.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri has the host 'evil.invalid%2f.blob.core.windows.net', which is not a "
     "plain DNS name or IP address."),
    ("non-ascii host", _bad(settings={"blobContainerUri": "https://\uff41cct.blob.core.windows.net/c1"}),
     "destination.settings.blobContainerUri has the host '\uff41cct.blob.core.windows.net', which is not a plain DNS "
     "name or IP address."),
    ("host ending in a number", _bad(settings={"blobContainerUri": "https://169.254.169.254.1/acct/c1"}),
     "destination.settings.blobContainerUri has the host '169.254.169.254.1', which is not a plain DNS name or IP "
     "address."),
    ("link-local address not listed", _bad(settings={"blobContainerUri": "http://169.254.170.2/acct/c1"}),
     f"destination.settings.blobContainerUri points at the link-local or metadata address '169.254.170.2', {NEVER}"),
    ("metadata address in decimal", _bad(settings={"blobContainerUri": "http://2852039166/acct/c1"}),
     "destination.settings.blobContainerUri points at the link-local or metadata address '2852039166' "
     f"(169.254.169.254), {NEVER}"),
    ("metadata address in hex", _bad(settings={"blobContainerUri": "https://0xa9.0xfe.0xa9.0xfe/acct/c1"}),
     "destination.settings.blobContainerUri points at the link-local or metadata address '0xa9.0xfe.0xa9.0xfe' "
     f"(169.254.169.254), {NEVER}"),
    ("metadata address mapped into ipv6", _bad(settings={"blobContainerUri": "https://[::ffff:169.254.169.254]/a/c1"}),
     "destination.settings.blobContainerUri points at the link-local or metadata address '::ffff:169.254.169.254', "
     f"{NEVER}"),
    ("listed ipv6 link-local address", _bad(settings={"blobContainerUri": "https://[fe80::1]/acct/c1"}),
     f"destination.settings.blobContainerUri points at the link-local or metadata address 'fe80::1', {NEVER}"),
    ("listed ipv6 metadata address", _bad(settings={"blobContainerUri": "https://[fd00:ec2::254]/acct/c1"}),
     f"destination.settings.blobContainerUri points at the link-local or metadata address 'fd00:ec2::254', {NEVER}"),
    ("connection string endpoint not listed", _bad(settings={
        "connectionString": f"BlobEndpoint=https://storage.evil.invalid;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"The BlobEndpoint in destination.settings.connectionString points at 'storage.evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint suffix not listed", _bad(settings={
        "connectionString": f"AccountName=acct;EndpointSuffix=core.evil.invalid;{SAS_SEGMENT}",
        "blobContainerName": "exports"}),
     "The blob endpoint of destination.settings.connectionString points at 'acct.blob.core.evil.invalid', "
     f"{NOT_ALLOWED}"),
    ("connection string account name smuggling a host", _bad(settings={
        "connectionString": f"AccountName=evil.invalid/x?;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"The blob endpoint of destination.settings.connectionString points at 'evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint hidden from the parser by a space", _bad(settings={
        "connectionString": f"AccountName=acct;EndpointSuffix=evil.invalid; BlobEndpoint=https://a.blob.core.windows.net;"
                            f"{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"The blob endpoint of destination.settings.connectionString points at 'acct.blob.evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint with metadata address", _bad(settings={
        "connectionString": f"BlobEndpoint=http://169.254.169.254/acct;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     "The BlobEndpoint in destination.settings.connectionString points at the link-local or metadata address "
     f"'169.254.169.254', {NEVER}"),
]
BAD_REQUESTS += ALLOWLIST_CASES
CORPUS_ALLOWED_HOSTS = ("127.0.0.1,localhost,*.blob.core.windows.net,169.254.169.254,[fe80::1],fd00:ec2::254,"
                        "storage.example.invalid:8443,*.wild.invalid")


@pytest.mark.parametrize("body,message", [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_400_with_its_message_and_starts_nothing(loop, host, body, message, monkeypatch):
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", CORPUS_ALLOWED_HOSTS)
    before = set(host.instances)
    response = post_export(loop, host, body)
    assert (response.status_code, response.get_body().decode()) == (400, message)
    assert response.mimetype == "text/plain"
    assert set(host.instances) == before


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/xml"}])
def test_non_json_content_type_is_415(loop, host, azurite, destination, headers):
    body = export_body([VALID_ID], container_settings(azurite, destination.container_name))
    response = post_export(loop, host, body, headers=headers)
    assert response.status_code == 415
    assert response.get_body().decode() == (
        f"The request's Content-Type must be application/json, not '{headers.get('Content-Type', '(none)')}'.")


def test_json_with_charset_is_accepted(loop, host, azurite, destination):
    body = export_body([VALID_ID], container_settings(azurite, destination.container_name))
    assert post_export(loop, host, body, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 202


def test_unsupported_api_version_is_404(loop, host):
    response = loop.run_until_complete(host.request("POST", "/v3/export", b"{}", JSON))
    assert (response.status_code, response.get_body().decode()) == (
        404, "API version 'v3' is not supported; use v1 or v2.")


def test_the_default_allowlist_refuses_the_local_emulator(loop, host, azurite, destination, monkeypatch):
    monkeypatch.delenv("EXPORT_ALLOWED_DESTINATION_HOSTS")
    assert _destination_answer(loop, host, container_settings(azurite, destination.container_name)) == (
        400, f"The BlobEndpoint in destination.settings.connectionString points at '127.0.0.1:{azurite.port}', which is "
             "not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert _destination_answer(loop, host, {"connectionString": "UseDevelopmentStorage=true",
                                            "blobContainerName": "exports"}) == (
        400, "The blob endpoint of destination.settings.connectionString points at '127.0.0.1:10000', which is not an "
             "allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert _destination_answer(loop, host, {"blobContainerUri": f"http://localhost:{azurite.port}/devstoreaccount1/"
                                                                f"{destination.container_name}"}) == (
        400, f"destination.settings.blobContainerUri points at 'localhost:{azurite.port}', which is not an allowed "
             "destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")
    assert list(destination.list_blobs()) == []


def test_a_listed_port_admits_only_that_port(loop, host, azurite, destination, monkeypatch):
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", f"127.0.0.1:{azurite.port}")
    assert post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name))
                       ).status_code == 202
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", f"127.0.0.1:{azurite.port + 3}")
    assert _destination_answer(loop, host, container_settings(azurite, destination.container_name)) == (
        400, f"The BlobEndpoint in destination.settings.connectionString points at '127.0.0.1:{azurite.port}', which is "
             "not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS).")


def test_a_malformed_allowlist_is_500_naming_the_setting(loop, host, azurite, destination, monkeypatch):
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", "127.0.0.1,*")
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    assert (response.status_code, response.get_body().decode()) == (
        500, "The export service is misconfigured: App setting EXPORT_ALLOWED_DESTINATION_HOSTS has the entry '*', "
             "which is neither a host name, an IP address nor a '*.suffix' pattern (each optionally followed by "
             "':port').")


@pytest.mark.parametrize("status,content,answer", [
    (503, b"<Error><Code>ServerBusy</Code><Message>Busy.</Message></Error>", "503 ServerBusy"),
    (503, b"<Error><Code>ServerBusy</Code></Error>", "TypeError"),
    (200, b"<html>a web page</html>", "200"),
    (302, b"", "302"),
])
def test_an_endpoint_that_is_not_blob_storage_is_400(loop, host, status, content, answer):
    from aiohttp import web

    async def reply(request):
        headers = {"Location": "https://elsewhere.invalid/"} if status == 302 else {}
        if status == 503:
            headers["x-ms-error-code"] = "ServerBusy"
        return web.Response(status=status, body=content, headers=headers, content_type="application/xml")

    async def serve():
        server = web.Application()
        server.router.add_route("*", "/{tail:.*}", reply)
        runner = web.AppRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = loop.run_until_complete(serve())
    try:
        got = _destination_answer(loop, host, {"blobContainerUri": f"http://127.0.0.1:{port}/devstoreaccount1/exports"})
    finally:
        loop.run_until_complete(runner.cleanup())
    assert got == (400, f"Azure Blob Storage container 'exports' in account 'devstoreaccount1' did not take the write "
                        f"({answer}): check that the URL or connection string points at Azure Blob Storage; if the "
                        "account is busy, try again.")


def _destination_answer(loop, host, settings):
    before = set(host.instances)
    response = post_export(loop, host, export_body([VALID_ID], settings))
    assert set(host.instances) == before
    return response.status_code, response.get_body().decode()


def test_missing_container_is_400(loop, host, azurite):
    assert _destination_answer(loop, host, container_settings(azurite, "no-such-container")) == (
        400, "Azure Blob Storage container 'no-such-container' does not exist in account 'devstoreaccount1'.")


def _sas_uri(destination, permission, hours=1):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    sas = generate_container_sas(ACCOUNT, destination.container_name, account_key=KEY,
                                 permission=ContainerSasPermissions.from_string(permission), expiry=expiry)
    return f"{destination.url}?{sas}"


def test_read_only_sas_is_400_naming_the_missing_permission(loop, host, destination):
    status, message = _destination_answer(loop, host, {"blobContainerUri": _sas_uri(destination, "r")})
    assert status == 400
    assert message == (
        f"Not allowed to write to Azure Blob Storage container '{destination.container_name}' in account "
        "'devstoreaccount1' (403 AuthorizationPermissionMismatch): a SAS token needs the create, write and add "
        "permissions; a managed identity needs the 'Storage Blob Data Contributor' role.")


def test_expired_sas_is_400(loop, host, destination):
    status, message = _destination_answer(loop, host, {"blobContainerUri": _sas_uri(destination, "racw", hours=-1)})
    assert status == 400
    assert message == (
        f"Not authorized to write to Azure Blob Storage container '{destination.container_name}' in account "
        "'devstoreaccount1' (403 AuthorizationFailure): the SAS token may be expired or signed with the wrong key, "
        "or the account's network rules may block this service.")
    assert "sig=" not in message


def test_unreachable_endpoint_is_400(loop, host):
    settings = {"blobContainerUri": "http://127.0.0.1:9/devstoreaccount1/unreachable"}
    assert _destination_answer(loop, host, settings) == (
        400, "Cannot connect to Azure Blob Storage container 'unreachable' in account 'devstoreaccount1': check the "
             "account's endpoint and that it is reachable.")


def test_managed_identity_token_failure_is_400(loop, host, monkeypatch):
    import azure.identity.aio
    from azure.identity import CredentialUnavailableError

    class NoIdentity:
        def __init__(self, **kwargs):
            pass

        async def get_token(self, *scopes, **kwargs):
            raise CredentialUnavailableError("no managed identity endpoint is available")

        async def close(self):
            pass

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", NoIdentity)
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", "*.blob.core.windows.invalid")
    settings = {"blobContainerUri": "https://acct.blob.core.windows.invalid/exports", "useManagedIdentity": True}
    assert _destination_answer(loop, host, settings) == (
        400, "Unable to authenticate to Azure Blob Storage container 'exports' in account 'acct' with the service's "
             "managed identity: no managed identity endpoint is available")


def test_missing_sealing_key_is_500_naming_the_setting(loop, host, azurite, destination, monkeypatch):
    monkeypatch.delenv("EXPORT_SEALING_KEY")
    response = post_export(loop, host, export_body([VALID_ID], container_settings(azurite, destination.container_name)))
    assert response.status_code == 500
    assert response.get_body().decode().startswith(
        "The export service is misconfigured: App setting EXPORT_SEALING_KEY is not set;")
