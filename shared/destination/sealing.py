"""Seals destination credentials so durable payloads and history never hold them in clear."""
from __future__ import annotations

import base64
import json
import os
from typing import Any, Dict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def seal(values: Dict[str, Any], key: bytes, operation_id: str) -> str:
    """Encrypt `values` with AES-GCM, bound to `operation_id` so the token opens for that operation only."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(values).encode(), operation_id.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str, key: bytes, operation_id: str) -> Dict[str, Any]:
    """Decrypt a token made by `seal` for the same operation; raise ValueError when it was not."""
    raw = base64.urlsafe_b64decode(token.encode())
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], operation_id.encode())
    except InvalidTag as error:
        raise ValueError(f"The sealed destination does not open for operation {operation_id}.") from error
    return json.loads(plain)
