"""Tests of shared/destination: the caller's container, sealing and errors.log."""
