"""Real engines in worker processes: inference never runs in the event loop's process, a
dead worker is replaced (or fails its request clearly), and the registries stop them."""

import asyncio
import os
import signal
import sys

import pytest

from speech_samples import librivox_utterances
from voipbin.speech import SpeechProviderError, SpeechSettings
from voipbin.speech import inference
from voipbin.media.pcm import split_frames
from voipbin.speech.stt.base import SpeechStarted
from voipbin.speech.stt.registry import SttRegistry
from voipbin.speech.stt.vad import vad_pool
from voipbin.speech.stt.whisper import WhisperRecognizer
from voipbin.speech.tts.registry import TtsRegistry
from voipbin.speech.workers import worker_pid

pytestmark = pytest.mark.slow


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def registries():  # type: ignore[no-untyped-def]
    tts, stt = TtsRegistry(SpeechSettings()), SttRegistry(SpeechSettings())
    yield tts, stt
    await tts.aclose()
    await stt.aclose()


async def test_whisper_and_piper_infer_in_worker_processes(registries) -> None:  # type: ignore[no-untyped-def]
    tts, stt = registries
    # earlier tests may have run engines in "thread" worker mode (in this process): count from here
    loads_before = _in_process_loads()
    modules_before = {"ctranslate2", "onnxruntime"} & set(sys.modules)
    piper, whisper = tts.get("piper"), stt.get("whisper")
    assert isinstance(whisper, WhisperRecognizer)
    text, pcm = librivox_utterances()[1]
    assert "young" in (await whisper.transcribe(pcm, language="en-US")).lower()
    assert [c async for c in piper.synthesize("Hello there.", language="en-US")]
    workers = [pid for pool in [*whisper.worker_pools(), piper.worker_pool()] for pid in pool.pids()]
    assert workers and os.getpid() not in workers
    # the models were loaded (and run) in the workers only
    assert _in_process_loads() == loads_before
    assert {"ctranslate2", "onnxruntime"} & set(sys.modules) == modules_before


def _in_process_loads() -> tuple[int, int]:
    """Calls (cached or not) of the model loaders in this process: whisper, piper."""
    return tuple(info.hits + info.misses  # type: ignore[return-value]
                 for info in (inference.load_whisper.cache_info(), inference.load_piper.cache_info()))


async def test_a_killed_whisper_worker_is_replaced(registries) -> None:  # type: ignore[no-untyped-def]
    _, stt = registries
    whisper = stt.get("whisper")
    text, pcm = librivox_utterances()[1]
    pool = whisper.worker_pools()[0]
    pid = await pool.run(worker_pid)
    # killed in the middle of a transcription: that request is retried on a new worker
    job = asyncio.create_task(whisper.transcribe(pcm * 3, language="en-US"))
    await asyncio.sleep(0)  # let the job be submitted
    os.kill(pid, signal.SIGKILL)
    try:
        assert "young" in (await asyncio.wait_for(job, 60)).lower()
    except SpeechProviderError:
        pass  # also acceptable: a clear error, never a hang
    assert "young" in (await asyncio.wait_for(whisper.transcribe(pcm, language="en-US"), 60)).lower()
    assert await pool.run(worker_pid) != pid


async def test_a_stream_whose_vad_worker_died_fails_clearly(registries) -> None:  # type: ignore[no-untyped-def]
    _, stt = registries
    whisper = stt.get("whisper")
    _, pcm = librivox_utterances()[1]
    stream = whisper.open_stream(language="en-US")
    frames = split_frames(bytes(8000) + pcm, 16000)
    events = stream.events()
    for frame in frames[:40]:
        stream.feed(frame)
    assert isinstance(await asyncio.wait_for(anext(events), 30), SpeechStarted)
    vad = vad_pool(stt.settings)
    for pid in vad.pids():
        os.kill(pid, signal.SIGKILL)
    for frame in frames[40:]:
        stream.feed(frame)
    stream.close()
    with pytest.raises(SpeechProviderError, match="vad"):
        async with asyncio.timeout(60):
            async for _ in events:
                pass
    # a new stream gets a new VAD worker
    again = whisper.open_stream(language="en-US")
    for frame in frames:
        again.feed(frame)
    again.close()
    assert [e async for e in again.events()]


async def test_registries_stop_their_workers(registries) -> None:  # type: ignore[no-untyped-def]
    tts, stt = registries
    piper, whisper = tts.get("piper"), stt.get("whisper")
    await piper.warm_up()
    await whisper.warm_up()
    pids = [pid for pool in [*whisper.worker_pools(), piper.worker_pool()] for pid in pool.pids()]
    assert len(pids) == 4  # final + interim whisper, VAD, piper
    await tts.aclose()
    await stt.aclose()
    assert not any(pid_is_alive(pid) for pid in pids)
