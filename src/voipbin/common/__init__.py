"""Shared kernel: domain errors, clocks, identifiers. Imports nothing else of voipbin."""
