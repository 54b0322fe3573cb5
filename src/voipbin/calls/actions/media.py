"""Actions that play to or listen on the call's media: ``answer``, ``talk``, ``play``, ``sleep``, ``echo``.

``talk`` speaks through a speaking's stages (:func:`voipbin.speakings.pipeline.speak_once`) into the
call's outbound mixer (``provider``/``voice_id`` pick the engine; bundled voices have one gender each); ``play`` plays WAV files from ``file://``
or ``http(s)://`` URLs (downloads capped at :data:`MAX_PLAY_BYTES`); ``echo`` sends the
endpoint's audio back to it for ``duration`` ms.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import httpx

from voipbin.calls.actions.base import ActionRun
from voipbin.calls.talk import spawn_talk
from voipbin.media.players import BufferPlayer
from voipbin.speakings.pipeline import speak_once

MAX_PLAY_BYTES = 50 * 1024 * 1024


async def answer(run: ActionRun) -> bool:
    await run.control.answer_incoming(run.call)  # outgoing calls were answered by the far end
    return False


async def talk(run: ActionRun) -> bool:
    opt = run.option
    synthesizer = run.context.tts.get(opt.get("provider") or None)
    speech = speak_once(synthesizer, [run.media.outbound], opt["text"], language=opt.get("language", "en-US"),
                        voice=opt.get("voice_id") or None,  # bundled voices: one gender each
                        wait=not opt.get("async"))
    if opt.get("async"):
        spawn_talk(speech, run.call.id)
        return False
    await speech
    return False


async def play(run: ActionRun) -> bool:
    for url in run.option["stream_urls"]:
        path = await fetch_audio(run, url)
        try:
            player = BufferPlayer.from_wav(path)
        finally:
            if url.startswith(("http://", "https://")):
                Path(path).unlink(missing_ok=True)
        run.media.outbound.add(player)
        try:
            await player.wait()
        finally:
            run.media.outbound.remove(player)
    return False


async def fetch_audio(run: ActionRun, url: str) -> str:
    """A local WAV path for ``url`` (file:// as is; http(s):// downloaded to a temp file).
    Raises ValueError past :data:`MAX_PLAY_BYTES`, httpx errors for a failed download."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return parsed.path
    client = run.context.http or httpx.AsyncClient(timeout=10)
    try:
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as out:
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_PLAY_BYTES:
                        raise ValueError(f"{url}: larger than {MAX_PLAY_BYTES} bytes")
                    out.write(chunk)
                return out.name
    finally:
        if run.context.http is None:
            await client.aclose()


async def sleep(run: ActionRun) -> bool:
    await asyncio.sleep(run.option["duration"] / 1000)
    return False


async def echo(run: ActionRun) -> bool:
    echoer = run.media.start_echo()
    try:
        await asyncio.sleep(run.option["duration"] / 1000)
    finally:
        echoer.stop()
        run.media.remove_inbound_consumer(echoer.push)
        run.media.outbound.remove(echoer)
    return False
