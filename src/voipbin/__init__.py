"""VoIPBIN-compatible programmable voice platform."""

__version__ = "0.1.0"
