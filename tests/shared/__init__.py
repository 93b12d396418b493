"""Unit tests of the domain package."""
