"""The AI's small parts: engine keys encrypted at rest, the ``ai_talk`` option's shape check, the
aicall lifecycle."""

from __future__ import annotations

import pytest

from voipbin.ai.crypto import EngineKeyError, KeyCipher, hint
from voipbin.ai.options import engine_provider, validate_talk_option
from voipbin.ai.status import AicallStatus, may_move
from voipbin.common.errors import InvalidArgument

AI_ID = "550e8400-e29b-41d4-a716-446655440000"


def test_keys_round_trip_only_under_their_secret() -> None:
    cipher = KeyCipher("a-deployment-secret-of-some-length")
    token = cipher.encrypt("sk-live-1234abcd")
    assert "sk-live" not in token and token != cipher.encrypt("sk-live-1234abcd")  # fresh IV each time
    assert cipher.decrypt(token) == "sk-live-1234abcd"
    assert KeyCipher("a-deployment-secret-of-some-length").decrypt(token) == "sk-live-1234abcd"
    with pytest.raises(EngineKeyError, match="cannot be decrypted"):
        KeyCipher("another-secret").decrypt(token)
    with pytest.raises(EngineKeyError):
        cipher.decrypt("not a token")
    with pytest.raises(ValueError):
        KeyCipher("")
    assert hint("sk-live-1234abcd") == "abcd" and hint("xy") == "xy"


def test_engine_model_is_provider_dot_model() -> None:
    assert engine_provider("openai.gpt-5.2", "engine_model") == "openai"
    assert engine_provider("openai-compatible.llama3", "engine_model") == "openai-compatible"
    assert engine_provider("local.default", "engine_model") == "local"
    for bad in ("gpt-5", "mistral.large", "openai.", None, 5):
        with pytest.raises(InvalidArgument) as err:
            engine_provider(bad, "option.engine_model")
        assert err.value.field == "option.engine_model"


def test_talk_option_normalized() -> None:
    assert validate_talk_option({"assistance_type": "ai", "assistance_id": AI_ID.upper(), "duration": 60},
                                "actions[0].option") == {"assistance_type": "ai", "assistance_id": AI_ID,
                                                         "duration": 60}
    assert validate_talk_option({"ai_id": AI_ID}, "actions[0].option") == {"ai_id": AI_ID, "duration": 0}
    inline = validate_talk_option({"initial_prompt": "Hi", "language": "en-us", "engine_model": "local.default",
                                   "duration": None}, "actions[2].option")
    assert inline == {"initial_prompt": "Hi", "language": "en-US", "engine_model": "local.default", "duration": 0}


@pytest.mark.parametrize(("option", "field"), [
    ({"assistance_type": "team", "assistance_id": AI_ID}, "assistance_type"),
    ({"assistance_type": "bot", "assistance_id": AI_ID}, "assistance_type"),
    ({"assistance_id": "not-a-uuid"}, "assistance_id"),
    ({"ai_id": 7}, "ai_id"),
    ({}, "assistance_id"),
    ({"assistance_id": "00000000-0000-0000-0000-000000000000"}, "assistance_id"),
    ({"initial_prompt": 5}, "initial_prompt"),
    ({"initial_prompt": "Hi", "engine_model": "gpt"}, "engine_model"),
    ({"initial_prompt": "Hi", "language": "en_US"}, "language"),
    ({"ai_id": AI_ID, "duration": -1}, "duration"),
    ({"ai_id": AI_ID, "duration": 1.5}, "duration"),
    ({"ai_id": AI_ID, "duration": True}, "duration"),
    ({"ai_id": AI_ID, "duration": 86401}, "duration"),
])
def test_talk_option_errors_name_the_field(option: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_talk_option(option, "actions[3].option")
    assert err.value.field == f"actions[3].option.{field}"


def test_aicall_moves_forward_only() -> None:
    assert may_move("initiating", "progressing") and may_move("progressing", "terminating")
    assert may_move("progressing", "pausing") and may_move("pausing", "resuming")
    assert may_move("resuming", "progressing") and may_move("terminating", "terminated")
    assert not may_move("terminated", "terminating") and not may_move("terminating", "progressing")
    assert not may_move("progressing", "initiating")
    assert all(may_move(s, "terminating") for s in AicallStatus if s not in ("terminating", "terminated"))
    with pytest.raises(ValueError):
        may_move("progressing", "paused")
