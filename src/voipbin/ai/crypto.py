"""Provider keys (``engine_key``) encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a
key derived from the deployment's secret (``ai_key_secret``, else ``jwt_secret``) with HKDF-SHA256.

A stored token only decrypts under the secret it was written with: changing the secret makes
every stored key unreadable (:class:`EngineKeyError`); set the keys again with ``PUT /ais/{id}``.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"voipbin ai engine_key v1"


class EngineKeyError(RuntimeError):
    """A stored engine key cannot be decrypted (the secret changed, or the token is corrupt)."""


class KeyCipher:
    """Encrypts and decrypts engine keys under one secret (a non-empty string)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the engine key secret must not be empty")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, key: str) -> str:
        """The Fernet token (urlsafe base64 text) of ``key``; a fresh IV each time."""
        return self._fernet.encrypt(key.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The key ``token`` holds; EngineKeyError when it was not written under this secret."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise EngineKeyError("the stored engine_key cannot be decrypted (was ai_key_secret or jwt_secret "
                                 "changed?); set it again with PUT /v1.0/ais/{id}") from exc


def hint(key: str) -> str:
    """The last 4 characters of ``key`` (all of it when shorter): what may be shown of a key."""
    return key[-4:]
