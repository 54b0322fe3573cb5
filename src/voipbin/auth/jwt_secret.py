"""The HS256 key of login JWTs: what ``serve`` accepts, and the sandbox's generated key (issue 13, finding 1).

``serve`` refuses a missing, short or publicly known secret: a token forged with the old default
(any customer, every permission) must never be accepted by a production process. The sandbox keeps a
random secret per data directory in ``jwt-secret`` (mode 0600), so its logins survive restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: The value Settings falls back to (tests, embedded use). Public: never valid for ``serve``.
INSECURE_DEFAULT_JWT_SECRET = "voipbin-sandbox-insecure-jwt-secret-change-me"
MIN_SECRET_BYTES = 32
SECRET_FILE_NAME = "jwt-secret"


class WeakSecret(ValueError):
    """The configured secret must not be used by ``serve``; the message says what to do."""


def require_strong_secret(secret: str) -> None:
    """Raise :class:`WeakSecret` unless ``secret`` is set, not the public default and >= 32 bytes (UTF-8)."""
    hint = ("set VOIPBIN_JWT_SECRET to a random value of at least 32 bytes, e.g. "
            "VOIPBIN_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")
    if not secret or secret == INSECURE_DEFAULT_JWT_SECRET:
        raise WeakSecret(f"refusing to start: VOIPBIN_JWT_SECRET is not set (the sandbox default is public); {hint}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise WeakSecret(f"refusing to start: VOIPBIN_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; {hint}")


def load_or_create_secret(data_dir: Path) -> str:
    """The secret kept in ``data_dir/jwt-secret``, created (random, 0600) on first use."""
    path = data_dir / SECRET_FILE_NAME
    try:
        secret = path.read_text().strip()
        if len(secret.encode()) >= MIN_SECRET_BYTES:
            return secret
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret
