"""Destinations outside EXPORT_ALLOWED_DESTINATION_HOSTS, or at addresses never allowed: 400 before any connection."""
import pytest

from tests.test_bad_requests import CONNECTION_STRING, URI, answers_400, bad_body

NOT_ALLOWED = "which is not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS)."
NEVER = "which is never allowed."
SAS_SEGMENT = "SharedAccessSignature=sv=1&sig=x"
ALLOWLIST_CASES = [
    ("unlisted host", bad_body(settings={"blobContainerUri": "https://acct.blob.core.windows.invalid/c1"}),
     f"{URI} points at 'acct.blob.core.windows.invalid', {NOT_ALLOWED}"),
    ("suffix pattern needs a label before it", bad_body(settings={"blobContainerUri": "https://blob.core.windows.net/c1"}),
     f"{URI} points at 'blob.core.windows.net', {NOT_ALLOWED}"),
    ("allowed name as a prefix of another domain", bad_body(settings={
        "blobContainerUri": "https://evil.blob.core.windows.net.attacker.invalid/c1"}),
     f"{URI} points at 'evil.blob.core.windows.net.attacker.invalid', {NOT_ALLOWED}"),
    ("unlisted loopback address", bad_body(settings={"blobContainerUri": "http://127.0.0.2:10000/devstoreaccount1/c1"}),
     f"{URI} points at '127.0.0.2:10000', {NOT_ALLOWED}"),
    ("unlisted private address", bad_body(settings={"blobContainerUri": "https://10.0.0.1/acct/c1"}),
     f"{URI} points at '10.0.0.1', {NOT_ALLOWED}"),
    ("unlisted ipv6 loopback", bad_body(settings={"blobContainerUri": "http://[::1]:10000/devstoreaccount1/c1"}),
     f"{URI} points at '[::1]:10000', {NOT_ALLOWED}"),
    ("listed host on another port", bad_body(settings={"blobContainerUri": "https://storage.example.invalid:9443/c1"}),
     f"{URI} points at 'storage.example.invalid:9443', {NOT_ALLOWED}"),
    ("listed host on its default port when a port is listed", bad_body(settings={
        "blobContainerUri": "https://storage.example.invalid/c1"}),
     f"{URI} points at 'storage.example.invalid', {NOT_ALLOWED}"),
    ("http to a host allowed by a pattern", bad_body(settings={"blobContainerUri": "http://acct.wild.invalid/c1"}),
     f"{URI} must use https (plain http is only accepted for hosts listed by exact "
     "name in the app setting EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not "
     "'http://acct.wild.invalid/c1'."),
    ("ftp scheme", bad_body(settings={"blobContainerUri": "ftp://acct.blob.core.windows.net/c1"}),
     f"{URI} must be an absolute https URL, not 'ftp://acct.blob.core.windows.net/c1'."),
    ("file scheme", bad_body(settings={"blobContainerUri": "file:///etc/passwd"}),
     f"{URI} must be an absolute https URL, not 'file:///etc/passwd'."),
    ("user info hiding the real host", bad_body(settings={
        "blobContainerUri": "https://acct.blob.core.windows.net@evil.invalid/c1"}),
     f"{URI} must not carry a user name or password, but "
     "'acct.blob.core.windows.net@evil.invalid' does."),
    ("backslash before the host", bad_body(settings={
        "blobContainerUri": "https://evil.invalid\\@acct.blob.core.windows.net/c1"}),
     f"{URI} is not a valid URL: 'https://evil.invalid\\@acct.blob.core.windows.net/c1'."),
    ("percent-encoded host", bad_body(settings={"blobContainerUri": "https://evil.invalid%2f.blob.core.windows.net/c1"}),
     f"{URI} has the host 'evil.invalid%2f.blob.core.windows.net', which is not a "
     "plain DNS name or IP address."),
    ("non-ascii host", bad_body(settings={"blobContainerUri": "https://\uff41cct.blob.core.windows.net/c1"}),
     f"{URI} has the host '\uff41cct.blob.core.windows.net', which is not a plain DNS "
     "name or IP address."),
    ("host ending in a number", bad_body(settings={"blobContainerUri": "https://169.254.169.254.1/acct/c1"}),
     f"{URI} has the host '169.254.169.254.1', which is not a plain DNS name or IP "
     "address."),
    ("link-local address not listed", bad_body(settings={"blobContainerUri": "http://169.254.170.2/acct/c1"}),
     f"{URI} points at the link-local or metadata address '169.254.170.2', {NEVER}"),
    ("metadata address in decimal", bad_body(settings={"blobContainerUri": "http://2852039166/acct/c1"}),
     f"{URI} points at the link-local or metadata address '2852039166' "
     f"(169.254.169.254), {NEVER}"),
    ("metadata address in hex", bad_body(settings={"blobContainerUri": "https://0xa9.0xfe.0xa9.0xfe/acct/c1"}),
     f"{URI} points at the link-local or metadata address '0xa9.0xfe.0xa9.0xfe' "
     f"(169.254.169.254), {NEVER}"),
    ("metadata address mapped into ipv6", bad_body(settings={"blobContainerUri": "https://[::ffff:169.254.169.254]/a/c1"}),
     f"{URI} points at the link-local or metadata address '::ffff:169.254.169.254', "
     f"{NEVER}"),
    ("listed ipv6 link-local address", bad_body(settings={"blobContainerUri": "https://[fe80::1]/acct/c1"}),
     f"{URI} points at the link-local or metadata address 'fe80::1', {NEVER}"),
    ("listed ipv6 metadata address", bad_body(settings={"blobContainerUri": "https://[fd00:ec2::254]/acct/c1"}),
     f"{URI} points at the link-local or metadata address 'fd00:ec2::254', {NEVER}"),
    ("connection string endpoint not listed", bad_body(settings={
        "connectionString": f"BlobEndpoint=https://storage.evil.invalid;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a BlobEndpoint that points at 'storage.evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint suffix not listed", bad_body(settings={
        "connectionString": f"AccountName=acct;EndpointSuffix=core.evil.invalid;{SAS_SEGMENT}",
        "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a blob endpoint that points at 'acct.blob.core.evil.invalid', "
     f"{NOT_ALLOWED}"),
    ("connection string account name smuggling a host", bad_body(settings={
        "connectionString": f"AccountName=evil.invalid/x?;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a blob endpoint that points at 'evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint hidden from the parser by a space", bad_body(settings={
        "connectionString": f"AccountName=acct;EndpointSuffix=evil.invalid; BlobEndpoint=https://a.blob.core.windows.net;"
                            f"{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a blob endpoint that points at 'acct.blob.evil.invalid', {NOT_ALLOWED}"),
    ("connection string endpoint with metadata address", bad_body(settings={
        "connectionString": f"BlobEndpoint=http://169.254.169.254/acct;{SAS_SEGMENT}", "blobContainerName": "exports"}),
     f"{CONNECTION_STRING} has a BlobEndpoint that points at the link-local or metadata address "
     f"'169.254.169.254', {NEVER}"),
]


@pytest.mark.parametrize("body,message", [case[1:] for case in ALLOWLIST_CASES],
                         ids=[case[0] for case in ALLOWLIST_CASES])
def test_a_destination_host_not_allowed_is_400_naming_it(loop, host, body, message, monkeypatch):
    answers_400(loop, host, body, message, monkeypatch)
