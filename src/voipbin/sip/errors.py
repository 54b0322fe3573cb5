"""Exceptions raised by the SIP layers."""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error raised by :mod:`voipbin.sip`."""


class SipParseError(SipError):
    """A message, header or URI that does not follow the RFC 3261 §25 grammar.

    ``reason`` is a short phrase naming the problem, usable as the reason phrase of a 400
    ("Missing Call-ID", "Bad CSeq").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransactionTimeout(SipError):
    """A client transaction ended by Timer B or Timer F (RFC 3261 §17.1.1.2, §17.1.2.2)."""


class TransportError(SipError):
    """The transport could not deliver a message (RFC 3261 §17.1.4, §18.4)."""
