"""The destination allowlist: which hosts, ports and schemes pass, which never do, and how the setting is read."""
import pytest

from shared.allowlist import DEFAULT_ALLOWLIST, DestinationAllowlist
from shared.errors import InvalidRequestError, ServiceConfigurationError
from shared.settings import ExportSettings

NOT_ALLOWED = "which is not an allowed destination host (app setting EXPORT_ALLOWED_DESTINATION_HOSTS)."


def _verdict(allowlist: DestinationAllowlist, url: str) -> str:
    try:
        allowlist.check(url, "F")
    except InvalidRequestError as error:
        return str(error)
    return "allowed"


@pytest.mark.parametrize("url,verdict", [
    ("https://acct.blob.core.windows.net/c1", "allowed"),
    ("https://ACCT.Blob.Core.Windows.NET/c1", "allowed"),
    ("https://acct.blob.core.usgovcloudapi.net/c1", "allowed"),
    ("https://acct.blob.core.chinacloudapi.cn:443/c1", "allowed"),
    ("https://a.b.blob.core.windows.net/c1", "allowed"),
    ("https://blob.core.windows.net/c1", f"F points at 'blob.core.windows.net', {NOT_ALLOWED}"),
    ("https://evil.blob.core.windows.net.attacker.com/c1",
     f"F points at 'evil.blob.core.windows.net.attacker.com', {NOT_ALLOWED}"),
    ("https://acctblob.core.windows.net/c1", f"F points at 'acctblob.core.windows.net', {NOT_ALLOWED}"),
    ("https://127.0.0.1:10000/devstoreaccount1/c1", f"F points at '127.0.0.1:10000', {NOT_ALLOWED}"),
    ("http://localhost:10000/devstoreaccount1/c1", f"F points at 'localhost:10000', {NOT_ALLOWED}"),
    ("http://acct.blob.core.windows.net/c1",
     "F must use https (plain http is only accepted for hosts listed by exact name in the app setting "
     "EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not 'http://acct.blob.core.windows.net/c1'."),
])
def test_default_allows_azure_blob_endpoints_only_over_https(url, verdict):
    assert _verdict(DEFAULT_ALLOWLIST, url) == verdict


LISTED = DestinationAllowlist.parse(" 127.0.0.1:10000 , LocalHost, [::1]:10000, *.Wild.invalid, exact.invalid,"
                                    " 169.254.169.254, fe80::1")


@pytest.mark.parametrize("url,verdict", [
    ("http://127.0.0.1:10000/devstoreaccount1/c1", "allowed"),
    ("https://127.0.0.1:10000/devstoreaccount1/c1", "allowed"),
    ("http://127.0.0.1/devstoreaccount1/c1", f"F points at '127.0.0.1', {NOT_ALLOWED}"),
    ("http://127.0.0.1:10001/devstoreaccount1/c1", f"F points at '127.0.0.1:10001', {NOT_ALLOWED}"),
    ("http://2130706433:10000/devstoreaccount1/c1", "allowed"),
    ("http://localhost:7071/devstoreaccount1/c1", "allowed"),
    ("http://[::1]:10000/devstoreaccount1/c1", "allowed"),
    ("http://[::ffff:127.0.0.1]:10000/devstoreaccount1/c1", f"F points at '[::ffff:127.0.0.1]:10000', {NOT_ALLOWED}"),
    ("http://127.0.0.2:10000/devstoreaccount1/c1", f"F points at '127.0.0.2:10000', {NOT_ALLOWED}"),
    ("http://exact.invalid/c1", "allowed"),
    ("https://sub.exact.invalid/c1", f"F points at 'sub.exact.invalid', {NOT_ALLOWED}"),
    ("https://a.wild.invalid/c1", "allowed"),
    ("https://wild.invalid/c1", f"F points at 'wild.invalid', {NOT_ALLOWED}"),
    ("http://a.wild.invalid/c1",
     "F must use https (plain http is only accepted for hosts listed by exact name in the app setting "
     "EXPORT_ALLOWED_DESTINATION_HOSTS, such as the local storage emulator), not 'http://a.wild.invalid/c1'."),
    ("https://169.254.169.254/acct/c1",
     "F points at the link-local or metadata address '169.254.169.254', which is never allowed."),
    ("https://[fe80::1]/acct/c1", "F points at the link-local or metadata address 'fe80::1', which is never allowed."),
    ("https://[64:ff9b::a9fe:a9fe]/acct/c1",
     "F points at the link-local or metadata address '64:ff9b::a9fe:a9fe', which is never allowed."),
    ("https://[2002:a9fe:a9fe::]/acct/c1",
     "F points at the link-local or metadata address '2002:a9fe:a9fe::', which is never allowed."),
    ("https://169.254.43518/acct/c1",
     "F points at the link-local or metadata address '169.254.43518' (169.254.169.254), which is never allowed."),
    ("https://0251.0376.0251.0376/acct/c1",
     "F points at the link-local or metadata address '0251.0376.0251.0376' (169.254.169.254), which is never allowed."),
    ("https://exact.invalid./c1", "F has the host 'exact.invalid.', which is not a plain DNS name or IP address."),
    ("https://exact.invalid:0/c1", "F is not a valid URL: 'https://exact.invalid:0/c1'."),
    ("https://exact .invalid/c1", "F is not a valid URL: 'https://exact .invalid/c1'."),
    ("https://exact.invalid\x00/c1", "F is not a valid URL: 'https://exact.invalid\x00/c1'."),
    ("https://:pw@exact.invalid/c1", "F must not carry a user name or password, but ':pw@exact.invalid' does."),
    ("gopher://exact.invalid/c1", "F must be an absolute https URL, not 'gopher://exact.invalid/c1'."),
])
def test_listed_entries_match_exactly_with_their_ports(url, verdict):
    assert _verdict(LISTED, url) == verdict


def test_a_pattern_never_matches_an_ip_address():
    allowlist = DestinationAllowlist.parse("*.0.0.1.invalid,*.invalid")
    assert _verdict(allowlist, "https://10.0.0.1/a/c1") == f"F points at '10.0.0.1', {NOT_ALLOWED}"
    assert _verdict(allowlist, "https://[::1]/a/c1") == f"F points at '::1', {NOT_ALLOWED}"


def test_the_setting_defaults_when_unset_or_blank():
    assert ExportSettings.from_environment({}).allowed_destinations == DEFAULT_ALLOWLIST
    assert ExportSettings.from_environment({"EXPORT_ALLOWED_DESTINATION_HOSTS": "  "}).allowed_destinations \
        == DEFAULT_ALLOWLIST
    listed = ExportSettings.from_environment({"EXPORT_ALLOWED_DESTINATION_HOSTS": "127.0.0.1"}).allowed_destinations
    assert _verdict(listed, "https://acct.blob.core.windows.net/c1") == (
        f"F points at 'acct.blob.core.windows.net', {NOT_ALLOWED}")


@pytest.mark.parametrize("entry", ["*", "*.", "*.1.2.3.4", "a b", "[1.2.3.4]", "host:0", "host:x", "host:70000",
                                   "*.[::1]", "exa%mple.invalid", "http://exact.invalid", "exact.invalid."])
def test_a_malformed_entry_names_itself(entry):
    with pytest.raises(ServiceConfigurationError) as error:
        ExportSettings.from_environment({"EXPORT_ALLOWED_DESTINATION_HOSTS": f"exact.invalid,{entry}"})
    assert str(error.value) == (
        f"App setting EXPORT_ALLOWED_DESTINATION_HOSTS has the entry '{entry}', which is neither a host name, an IP "
        "address nor a '*.suffix' pattern (each optionally followed by ':port').")
