"""Outgoing mail: a real SMTP client (aiosmtplib) to ``VOIPBIN_SMTP_URL``, or the log in the sandbox."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

log = structlog.get_logger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    """Sends through an SMTP server given as ``smtp://[user:pass@]host:port`` (``smtps://`` for TLS)."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"VOIPBIN_SMTP_URL must be smtp://host:port or smtps://host:port, not {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self._sender, to, subject
        msg.set_content(body)
        await aiosmtplib.send(msg, hostname=self._host, port=self._port, use_tls=self._tls,
                              start_tls=False if self._tls else None,
                              username=self._user, password=self._password, timeout=10)


class LogMailer:
    """Writes the mail to the log instead of sending it (sandbox: read the OTP from the console)."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning("mail not sent (no VOIPBIN_SMTP_URL); logged instead", to=to, subject=subject, body=body)


def make_mailer(smtp_url: str, sender: str) -> Mailer:
    return SmtpMailer(smtp_url, sender) if smtp_url else LogMailer()
