"""The app's own Azure identity: a user-assigned managed identity when a client id is set, else the default chain."""
from __future__ import annotations

from typing import Any, Optional


def app_identity(client_id: Optional[str], asynchronous: bool = True) -> Any:
    """A token credential for the app: ManagedIdentityCredential(client_id) or DefaultAzureCredential."""
    if asynchronous:
        from azure.identity import aio as identity
    else:
        import azure.identity as identity
    return identity.ManagedIdentityCredential(client_id=client_id) if client_id \
        else identity.DefaultAzureCredential()
