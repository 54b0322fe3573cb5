"""Webhook signatures: ``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The key is the customer's ``webhook_secret`` (shown only by the customer's own ``GET /v1.0/customer``).
A receiver verifies the exact bytes it received, before parsing them::

    from voipbin.events.signature import verify

    body = await request.body()                       # raw bytes, not re-serialized JSON
    if not verify(WEBHOOK_SECRET, body, request.headers.get("X-VoIPBIN-Signature", "")):
        return Response(status_code=401)
    event_id = request.headers["X-VoIPBIN-Event-Id"]  # same id on every retry: deduplicate on it
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-VoIPBIN-Signature"
EVENT_ID_HEADER = "X-VoIPBIN-Event-Id"
SCHEME = "sha256"


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=<64 lower-case hex digits>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` carries a valid signature of ``body`` under ``secret``.

    ``header`` is the ``X-VoIPBIN-Signature`` value; several comma-separated signatures are accepted
    (any one valid suffices), hex is case-insensitive. Compares in constant time; never raises
    (a missing, malformed or empty header or secret gives False).
    """
    if not secret or not header or not isinstance(body, bytes | bytearray | memoryview):
        return False
    expected = sign(secret, bytes(body)).partition("=")[2]
    ok = False
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme.strip().lower() == SCHEME:
            ok |= hmac.compare_digest(value.strip().lower().encode(), expected.encode())
    return ok
