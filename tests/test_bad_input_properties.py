"""Bad input never hurts: whatever body arrives, the answer is a 202 or a 4xx with a message, and a 4xx starts nothing."""
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.export_client import container_settings, export_body, post_export

VALID_ID = "1.2.840.10008.1"
SSRF_URIS = [
    "http://169.254.169.254/latest/meta-data/c1", "https://169.254.169.254/acct/c1", "http://2852039166/acct/c1",
    "http://0xa9fea9fe/acct/c1", "http://0251.0376.0251.0376/acct/c1", "http://169.254.43518/acct/c1",
    "http://[::ffff:169.254.169.254]/acct/c1", "http://[fe80::1%25eth0]/acct/c1", "http://[fd00:ec2::254]/acct/c1",
    "http://[64:ff9b::a9fe:a9fe]/acct/c1", "http://metadata.google.internal/computeMetadata/v1/c1",
    "https://user:pass@acct.blob.core.windows.net/c1", "https://acct.blob.core.windows.net@evil.invalid/c1",
    "https://evil.invalid\\@acct.blob.core.windows.net/c1", "https://acct.blob.core.windows.net.evil.invalid/c1",
    "gopher://127.0.0.1:6379/_FLUSHALL", "file:///etc/passwd", "ftp://acct.blob.core.windows.net/c1",
    "javascript:alert(1)", "data:text/plain,hi", "//acct.blob.core.windows.net/c1", "https:///c1",
    "http://127.0.0.2:10000/devstoreaccount1/c1", "http://0/devstoreaccount1/c1", "http://[::1]:1/devstoreaccount1/c1",
    "https://acct%2eblob.core.windows.net/c1", "https://ACCT.BLOB.CORE.WINDOWS.NET./c1", "http://localhost:1/a/c1",
    "http://127.0.0.1:1/devstoreaccount1/c1", "https://acct.blob.core.windows.net:99999/c1", "https://[::1/c1",
]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
nasty_text = st.text(st.characters(codec=None, categories=None), max_size=200) | st.sampled_from(
    ["\x00", "1.2\x00", "\ud800", "1.2/\udfff", "\u202e1.2", "1." + "9" * 100_000, "é" * 10_000, " ", "/" * 1000])
uris = st.sampled_from(SSRF_URIS) | nasty_text | st.builds(
    "{}://{}/{}".format, st.sampled_from(["http", "https", "HTTPS", "hTtP", "ws", "ldap", ""]),
    st.sampled_from(["127.0.0.1", "localhost", "[::1]", "10.0.0.1", "2130706433", "0x7f000001", "acct.invalid",
                     "169.254.169.254", "acct.blob.core.windows.net", "\u0430cct.invalid", "a" * 300]),
    st.sampled_from(["", "c1", "devstoreaccount1/c1", "a/b/c", "%2e%2e/c1"]))


def _valid_body(azurite, container):
    return export_body([VALID_ID], container_settings(azurite, container))


def _break_one_field(azurite, container):
    """A valid body with one field replaced by something odd."""
    def broken(path_and_value):
        path, value = path_and_value
        body = _valid_body(azurite, container)
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return body
    paths = st.sampled_from([("source",), ("source", "type"), ("source", "settings"), ("source", "settings", "values"),
                             ("destination",), ("destination", "type"), ("destination", "settings"),
                             ("destination", "settings", "connectionString"),
                             ("destination", "settings", "blobContainerName"),
                             ("destination", "settings", "blobContainerUri"),
                             ("destination", "settings", "useManagedIdentity")])
    values = json_values | nasty_text | uris | st.lists(nasty_text, max_size=5)
    return st.tuples(paths, values).map(broken)


def _deep(depth_and_kind):
    depth, kind = depth_and_kind
    opener, closer = (b"[", b"]") if kind else (b'{"a":', b"}")
    return b'{"source": ' + opener * depth + b"1" + closer * depth + b"}"


def bodies(azurite, container):
    """Generated request bodies: JSON-able values (sent as JSON) or raw bytes (sent as they are)."""
    raw = st.binary(max_size=300) | st.tuples(st.integers(1, 200_000), st.booleans()).map(_deep) | st.sampled_from(
        [b"\xef\xbb\xbf{}", b'{"source": NaN}', b"[" * 50_000, b'{"a": 1e999999}', b'"\\ud800"', b"\x00",
         b'{"source": {"type": "identifiers", "settings": {"values": ["1.2\\u0000"]}}}'])
    ssrf = uris.map(lambda uri: export_body([VALID_ID], {"blobContainerUri": uri}))
    ssrf_connection = uris.map(lambda uri: export_body([VALID_ID], {
        "connectionString": f"BlobEndpoint={uri};SharedAccessSignature=sv=1&sig=x", "blobContainerName": "exports"}))
    harmless = json_values.map(lambda extra: {**_valid_body(azurite, container), "comment": extra})
    return (json_values | raw | ssrf | ssrf_connection | _break_one_field(azurite, container) | harmless
            | st.builds(export_body, st.lists(nasty_text | json_values, max_size=5), json_values))


@pytest.fixture
def emulator_only(monkeypatch, azurite):
    """Allow only the test's Azurite port, so generated destinations reach nothing else."""
    monkeypatch.setenv("EXPORT_ALLOWED_DESTINATION_HOSTS", f"127.0.0.1:{azurite.port}")


EXAMPLES = 1000
FIELD_OR_BODY = ("The field '", "The request body ")
DESTINATION_ANSWER = "Azure Blob Storage container '"


def test_any_body_gets_202_or_a_4xx_with_a_message(loop, host, azurite, destination, emulator_only):
    answers, messages = {}, set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies(azurite, destination.container_name))
    def check(body):
        before = len(host.instances)
        response = post_export(loop, host, body)
        text = response.get_body().decode("utf-8")
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        messages.add(text.split("'", 1)[0][:60])
        assert response.status_code == 202 or 400 <= response.status_code < 500, (response.status_code, text)
        if response.status_code == 202:
            assert len(host.instances) == before + 1
        else:
            assert text.strip() and response.mimetype == "text/plain"
            # one wording: a field at fault, the body as a whole, or the destination container's own answer
            assert text.startswith(FIELD_OR_BODY) or DESTINATION_ANSWER in text, text
            assert len(host.instances) == before

    check()
    print(f"{EXAMPLES} generated bodies answered {answers} with {len(messages)} kinds of message")
    assert answers.get(202, 0) > 0 and answers.get(400, 0) > EXAMPLES // 2, answers


@pytest.mark.timeout(120)
def test_a_hundred_thousand_identifiers_are_accepted(loop, host, azurite, destination):
    values = [f"1.2.840.10008.{study}/1.2.{series}" for study in range(1000) for series in range(100)]
    started = time.perf_counter()
    response = post_export(loop, host, _valid_body(azurite, destination.container_name) | {
        "source": {"type": "identifiers", "settings": {"values": values}}})
    elapsed = time.perf_counter() - started
    print(f"100,000 identifiers answered {response.status_code} in {elapsed:.2f} s")
    assert response.status_code == 202, response.get_body()[:500]
    operation_id = json.loads(response.get_body())["id"]
    assert json.loads(host.instances[operation_id].input)["identifier_count"] == 100_000
    assert len(host.instances[operation_id].input) < 1000  # the identifiers wait in the work container
