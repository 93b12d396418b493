"""Tests, mirroring the rooms of the app; see tests/durable_host.py for the Functions host stand-in."""
