"""Issue 13 finding 1: ``voipbin serve`` refuses the public default JWT secret and short ones; the
sandbox keeps a random secret per data dir (0600)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voipbin.auth.jwt_secret import (
    INSECURE_DEFAULT_JWT_SECRET, MIN_SECRET_BYTES, WeakSecret, load_or_create_secret, require_strong_secret,
)
from voipbin.cli import app


@pytest.mark.parametrize("secret", [None, "", INSECURE_DEFAULT_JWT_SECRET, "x" * (MIN_SECRET_BYTES - 1)])
def test_serve_exits_with_a_message_without_a_strong_secret(secret: str | None, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.delenv("VOIPBIN_JWT_SECRET", raising=False)
    if secret is not None:
        monkeypatch.setenv("VOIPBIN_JWT_SECRET", secret)
    monkeypatch.setenv("VOIPBIN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'never.db'}")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "VOIPBIN_JWT_SECRET" in result.output and "32 bytes" in result.output
    assert not (tmp_path / "never.db").exists(), "nothing starts before the check"


def test_a_strong_secret_passes() -> None:
    require_strong_secret("x" * MIN_SECRET_BYTES)
    with pytest.raises(WeakSecret):
        require_strong_secret(INSECURE_DEFAULT_JWT_SECRET)


def test_the_sandbox_secret_is_random_private_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = load_or_create_secret(data_dir)
    assert len(first.encode()) >= MIN_SECRET_BYTES and first != INSECURE_DEFAULT_JWT_SECRET
    assert stat.S_IMODE((data_dir / "jwt-secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert load_or_create_secret(data_dir) == first
    assert load_or_create_secret(tmp_path / "other") != first
