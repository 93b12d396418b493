"""Tests of shared/api: request parsing, status, operation control."""
