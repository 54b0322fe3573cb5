"""Languages offline on a live call, over the REST API: a speaking in ja-JP (Kokoro) is heard by
a transcribe in ja-JP (the multilingual Whisper model, loaded by this first Japanese request) as
Japanese text close to what was said; a language no engine serves, or an invalid tag, is a 400
naming ``language`` before anything starts."""

from __future__ import annotations

import httpx
import pytest

from st_support import Events, LiveCall
from tests_support.languages import character_error_rate

pytestmark = pytest.mark.slow

SAY_JA = "お電話ありがとうございます。ご用件をお話しください。"


async def test_a_call_in_japanese_is_spoken_and_transcribed(client: httpx.AsyncClient, admin_token: str,
                                                            live_call: LiveCall, events: Events) -> None:
    t = {"token": admin_token}
    call_id = live_call.call["id"]
    for language in ["xx", "zu-ZA", "en_US"]:
        for path, extra in [("/v1.0/transcribes", {"direction": "out"}), ("/v1.0/speakings", {})]:
            r = await client.post(path, params=t, json={"reference_type": "call", "reference_id": call_id,
                                                        "language": language, **extra})
            assert r.status_code == 400 and "language" in r.json()["error"]["message"], (path, language, r.text)

    r = await client.post("/v1.0/transcribes", params=t, json={
        "reference_type": "call", "reference_id": call_id, "language": "ja-JP", "direction": "out"})
    assert r.status_code == 200 and r.json()["language"] == "ja-JP", r.text
    tid = r.json()["id"]
    r = await client.post("/v1.0/speakings", params=t, json={
        "reference_type": "call", "reference_id": call_id, "language": "ja-JP", "direction": "out"})
    assert r.status_code == 201 and r.json()["provider"] == "kokoro", r.text
    sid = r.json()["id"]
    await events.next("speaking_started", sid)
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": SAY_JA})).status_code == 200

    heard: list[str] = []
    while "ください" not in "".join(heard):  # the first request loads both models: minutes on a busy machine at worst
        event = await events.next("transcript_created", tid, timeout=120, direction="out")
        heard.append(event.data["message"])
    assert character_error_rate("ja-JP", [SAY_JA], ["".join(heard)]) <= 0.3, heard
