"""Sealed destination settings open only with the same key and operation id."""
import pytest

from shared.destination.sealing import seal, unseal

KEY = bytes(range(32))


def test_sealed_values_open_for_their_operation_only():
    token = seal({"connection_string": "AccountKey=secret"}, KEY, "op1")
    assert "secret" not in token
    assert unseal(token, KEY, "op1") == {"connection_string": "AccountKey=secret"}
    with pytest.raises(ValueError, match="does not open for operation op2"):
        unseal(token, KEY, "op2")
    with pytest.raises(ValueError):
        unseal(token, bytes(32), "op1")
