"""Tests of shared/notification."""
