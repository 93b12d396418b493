"""Orchestrator functions: deterministic generators with no I/O, clock, randomness or settings reads."""
