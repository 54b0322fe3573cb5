"""Log lines carry no credential fragments (issue 14); status codes and ordinary words stay readable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from voipbin.logging import REDACTED, redact_credentials, scrub


@pytest.mark.parametrize(("text", "secret"), [
    ("GET /v1.0/customer?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc&x=1", "eyJhbGci"),
    ("accesskey=vb_Abcdefgh12345678 refused", "vb_Abcdefgh"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGci"),
    ('{"password": "hunter2hunter2"}', "hunter2"),
    ("webhook_secret=0123456789abcdef", "0123456789abcdef"),
])
def test_credentials_are_scrubbed(text: str, secret: str) -> None:
    assert secret not in scrub(text) and REDACTED in scrub(text)


def test_ordinary_text_and_codes_stay() -> None:
    assert scrub("SIP 486 Busy Here, status code: 486") == "SIP 486 Busy Here, status code: 486"
    assert scrub("x" * 2000).endswith("...") and len(scrub("x" * 2000)) < 600


def test_credential_fields_are_dropped() -> None:
    event = redact_credentials(None, "info", {"event": "login", "password": "p", "token": "t", "code": 486})
    assert event == {"event": "login", "password": REDACTED, "token": REDACTED, "code": 486}


@pytest.fixture
def structlog_config() -> Iterator[None]:
    """Whatever configuration earlier tests left, restored after the test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("structlog_config")
def test_unconfigured_structlog_renders_no_locals(capsys: pytest.CaptureFixture[str]) -> None:
    from voipbin.logging import configure_defaults

    configure_defaults()  # what importing voipbin.logging does when nothing configured structlog

    def fail() -> None:
        local_value = "LOCAL-VALUE-" * 10  # noqa: F841 (a rich traceback with locals would print it)
        raise ValueError("accesskey=vb_abcdefghijkl")

    try:
        fail()
    except ValueError:
        structlog.get_logger("t").exception("boom")
    out = capsys.readouterr().out
    assert "boom" in out and "in fail" in out
    assert "LOCAL-VALUE" not in out and "vb_abcdefghijkl" not in out and len(out.splitlines()) == 1
