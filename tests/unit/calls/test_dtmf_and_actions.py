"""Unit tests: SIP INFO DTMF bodies, digit collection, the new action validators, trunk trust, mute/MOH gating."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from voipbin.media.gate import GatedMixer
from voipbin.media.moh import MusicOnHold
from voipbin.calls.digits import DigitBuffer, parse_info
from voipbin.calls.inbound import parse_allowed_hosts, to_e164
from voipbin.common.errors import InvalidArgument
from voipbin.flows.actions import normalize_actions
from voipbin.media.pcm import FRAME_BYTES
from voipbin.media.sources import AudioSource


@pytest.mark.parametrize(("ctype", "body", "expected"), [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
    ("Application/DTMF-Relay; charset=x", b"signal= #\nduration=250", ("#", 250)),
    ("application/dtmf-relay", b"Signal=11\r\n", ("#", 100)),
    ("application/dtmf-relay", b"Signal=10", ("*", 100)),
    ("application/dtmf", b"7", ("7", 100)),
    ("application/dtmf-relay", b"Duration=160", None),
    ("application/dtmf-relay", b"Signal=X", None),
    ("text/plain", b"Signal=1", None),
])
def test_parse_info(ctype: str, body: bytes, expected: tuple[str, int] | None) -> None:
    assert parse_info(ctype, body) == expected


async def test_digit_buffer_length_key_timeout_and_type_ahead() -> None:
    buf = DigitBuffer()
    buf.push("1")  # pressed during a prompt, before digits_receive
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, buf.push, "2")
    loop.call_later(0.02, buf.push, "3")
    assert await buf.collect(duration_s=2, length=2, key="") == "12"
    assert buf.pending == "" or buf.pending == "3"
    await asyncio.sleep(0.03)
    buf.push("#")
    buf.push("9")
    assert await buf.collect(duration_s=2, length=5, key="#") == "3#"  # key included, as the docs say
    assert buf.pending == "9"
    assert await buf.collect(duration_s=0.05, length=3, key="") == "9"  # timeout returns what it has


def _flow(*actions: dict) -> list[dict]:
    return normalize_actions(list(actions))


def test_new_actions_validate_and_fill_defaults() -> None:
    target = str(uuid.uuid4())
    out = _flow({"type": "digits_receive", "option": {"duration": 3000, "key": "#"}},
                {"type": "branch", "option": {"target_ids": {"1": target}}},
                {"type": "goto", "option": {"target_id": target, "loop_count": 2}},
                {"id": target, "type": "digits_send", "option": {"digits": "12#"}},
                {"type": "connect", "option": {"destinations": [{"type": "tel", "target": "+15551234567"}]}})
    assert out[0]["option"] == {"duration": 3000, "length": 1, "key": "#"}
    assert out[1]["option"]["variable"] == "voipbin.call.digits"
    assert out[3]["option"] == {"digits": "12#", "duration": 250, "interval": 100}
    assert out[4]["option"]["destinations"][0]["target"] == "+15551234567"


@pytest.mark.parametrize(("action", "field"), [
    ({"type": "digits_send", "option": {"digits": "12x"}}, "actions[0].option.digits"),
    ({"type": "digits_send", "option": {"digits": "1", "duration": 50}}, "actions[0].option.duration"),
    ({"type": "digits_receive", "option": {"length": 0}}, "actions[0].option.length"),
    ({"type": "digits_receive", "option": {"key": "x"}}, "actions[0].option.key"),
    ({"type": "goto", "option": {}}, "actions[0].option.target_id"),
    ({"type": "goto", "option": {"target_id": str(uuid.uuid4())}}, "actions[0].option.target_id"),
    ({"type": "branch", "option": {"target_ids": {"1": "nope"}}}, "actions[0].option.target_ids.1"),
    ({"type": "branch", "option": {"default_target_id": str(uuid.uuid4())}}, "actions[0].option.default_target_id"),
    ({"type": "connect", "option": {"destinations": []}}, "actions[0].option.destinations"),
    ({"type": "connect", "option": {"destinations": [{"type": "tel", "target": "555"}]}},
     "actions[0].option.destinations[0].target"),
])
def test_bad_new_actions_name_the_field(action: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_actions([action])
    assert err.value.field == field and field in err.value.message


def test_trunk_hosts_and_numbers() -> None:
    assert parse_allowed_hosts("", "sip:Trunk.Example:5060") == {("trunk.example", None)}
    assert parse_allowed_hosts("10.0.0.1, 127.0.0.1:5070", "sip:x") == {("10.0.0.1", None), ("127.0.0.1", 5070)}
    assert to_e164("+15551234567") == "+15551234567"
    assert to_e164("1 (555) 123-4567") == "+15551234567"
    assert to_e164("2001") == "+2001"  # short codes look like numbers: extensions are matched first
    assert to_e164("alice") is None and to_e164(None) is None


class _Tone(AudioSource):
    def __init__(self) -> None:
        self.reads = 0

    def read_frame(self) -> bytes:
        self.reads += 1
        return np.full(FRAME_BYTES // 2, 1000, dtype="<i2").tobytes()


def test_gated_mixer_silences_keeps_time_and_plays_moh() -> None:
    tone = _Tone()
    mixer = GatedMixer(tone)
    assert mixer.read_frame() is not None
    mixer.gated = True
    assert mixer.read_frame() is None and tone.reads == 2  # the source still advances
    mixer.override = MusicOnHold()
    frames = [np.frombuffer(mixer.read_frame() or b"", dtype="<i2") for _ in range(50)]
    assert all(len(f) == FRAME_BYTES // 2 for f in frames)
    assert 500 < float(np.sqrt(np.mean(np.concatenate(frames).astype(float) ** 2))) < 8000
