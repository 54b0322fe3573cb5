"""The verified-JWT cache of ``auth.tokens.TokenIssuer`` (issue 21): a verified token is not decoded
again, and the cache holds at most ``VERIFIED_MAX_ENTRIES`` tokens (the oldest goes first)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from voipbin.auth import tokens
from voipbin.auth.tokens import TokenIssuer

SECRET = "s" * 64


def test_verified_tokens_are_cached_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens, "VERIFIED_MAX_ENTRIES", 3)
    monkeypatch.setattr(tokens.jwt, "decode", counting_decode)
    issuer = TokenIssuer(SECRET, 3600)
    issued = [issuer.issue(agent_id=f"agent-{n}", customer_id="c1", permission=n, username=f"u{n}")
              for n in range(5)]
    for token in issued:
        assert issuer.verify(token).agent_id == f"agent-{issued.index(token)}"
    assert decoded == issued
    for token in issued[2:]:  # the three newest are cached
        issuer.verify(token)
    assert decoded == issued
    assert issuer.verify(issued[0]).agent_id == "agent-0"  # the oldest went: decoded again
    assert decoded == [*issued, issued[0]]
