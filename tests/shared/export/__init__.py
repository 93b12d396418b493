"""Tests of shared/export: checkpoint, resolution, copying, working files."""
