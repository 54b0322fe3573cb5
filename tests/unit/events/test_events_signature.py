"""``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` and its verification helper."""

from __future__ import annotations

import hashlib
import hmac

from voipbin.events.signature import sign, verify

SECRET = "a" * 64
BODY = b'{"type":"call_created","data":{"id":"x"}}'


def test_sign_is_hmac_sha256_hex_of_the_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == f"sha256={expected}"


def test_verify_accepts_the_signature_and_variants() -> None:
    header = sign(SECRET, BODY)
    assert verify(SECRET, BODY, header)
    assert verify(SECRET, BODY, header.upper().replace("SHA256=", "sha256="))
    assert verify(SECRET, BODY, f"sha256=deadbeef, {header}")  # rotation: any one valid
    assert verify(SECRET, bytearray(BODY), header)


def test_verify_rejects_tampering_and_garbage() -> None:
    header = sign(SECRET, BODY)
    assert not verify(SECRET, BODY + b" ", header)
    assert not verify("b" * 64, BODY, header)
    assert not verify(SECRET, BODY, header.replace("sha256=", "sha1="))
    assert not verify(SECRET, BODY, header[:-1])
    for bad in ("", "sha256=", "garbage", "=", ","):
        assert not verify(SECRET, BODY, bad)
    assert not verify("", BODY, sign("", BODY))
    assert not verify(SECRET, BODY.decode(), header)  # type: ignore[arg-type]
