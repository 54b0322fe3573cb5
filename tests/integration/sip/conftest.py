"""Fixtures for the real-peer SIP tests."""

from sip_peer_env import registry  # noqa: F401
