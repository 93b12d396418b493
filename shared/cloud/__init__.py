"""Azure plumbing: connection pools and cached storage clients, how storage errors read, the app's identity."""
