"""Languages offline: round-trip quality, speed and memory of each language's local engines.

For each language served offline (es-ES, fr-FR, de-DE, ja-JP, ko-KR) and English as the reference
measured in the same run: the sandbox's own TTS speaks six sentences, the sandbox's own STT hears
them back through a stream (Silero VAD segmentation included), and the text is scored (WER, or
CER for ja/ko: tests/tests_support/languages.py), on 16 kHz audio and again through G.711 u-law
at 8 kHz (what a call carries). Printed per language: engines, score, TTS time to first chunk,
TTS real-time factor, STT time per utterance (the recognizer's `transcribe`, whole utterance),
and the first-use cost (model join + load); then the resident memory of each worker.

Both ends are our engines: a good score shows intelligible synthesis and recognition together,
not how well real callers are understood (no package ships human recordings in these languages).

    .venv/bin/python bench/languages_quality.py [--languages es-ES,ja-JP]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration" / "speech"))

from speech_samples import SENTENCES, mulaw_round_trip  # noqa: E402
from tests_support.languages import SAMPLES, error_rate, hear, metric, speak  # noqa: E402
from voipbin.media.pcm import resample  # noqa: E402
from voipbin.speech.settings import SpeechSettings  # noqa: E402
from voipbin.speech.stt.registry import SttRegistry  # noqa: E402
from voipbin.speech.tts.registry import TtsRegistry  # noqa: E402
from voipbin.speech.workers import process_rss_bytes  # noqa: E402


def telephone(pcm16k: bytes) -> bytes:
    return resample(mulaw_round_trip(resample(pcm16k, 16000, 8000)), 8000, 16000)


async def measure(tts: TtsRegistry, stt: SttRegistry, language: str, sentences: list[str]) -> dict:
    started = time.perf_counter()
    pcm, synthesizer, _ = await speak(tts, language, sentences[0])  # first use: loads the voice
    recognizer, tag = await asyncio.to_thread(stt.provider_for, language)
    await recognizer.transcribe(pcm, language=tag)  # type: ignore[attr-defined]
    first_use = time.perf_counter() - started
    heard, heard_8k, first_chunks, rtf, stt_s = [], [], [], [], []
    for text in sentences:
        t0 = time.perf_counter()
        pcm, synthesizer, first = await speak(tts, language, text)
        rtf.append((time.perf_counter() - t0) / (len(pcm) / 32000))
        first_chunks.append(first)
        heard.append(await hear(stt, language, pcm))
        heard_8k.append(await hear(stt, language, telephone(pcm)))
        t0 = time.perf_counter()
        await recognizer.transcribe(pcm, language=tag)  # type: ignore[attr-defined]
        stt_s.append(time.perf_counter() - t0)
    model = getattr(recognizer, "_options", None)
    return {
        "language": language, "tts": synthesizer.name, "stt": Path(model.model).name if model else recognizer.name,
        "metric": metric(language), "score": error_rate(language, sentences, heard),
        "score_8k": error_rate(language, sentences, heard_8k), "first_chunk_ms": 1000 * statistics.median(first_chunks),
        "rtf": statistics.median(rtf), "stt_ms": 1000 * statistics.median(stt_s), "first_use_s": first_use,
        "examples": list(zip(sentences[:2], heard[:2], strict=True)),
    }


async def main(languages: list[str]) -> None:
    with tempfile.TemporaryDirectory() as cache:
        settings = SpeechSettings(speech_cache_dir=Path(cache))
        tts, stt = TtsRegistry(settings), SttRegistry(settings)
        rows = [await measure(tts, stt, "en-US", SENTENCES[:6])]  # the reference, same run
        english_only_rss = process_rss_bytes(os.getpid())
        for language in languages:
            rows.append(await measure(tts, stt, language, SAMPLES[language]))
        print(f"{'language':9} {'TTS':7} {'STT model':22} {'score 16k':>10} {'via G.711':>10} "
              f"{'TTS 1st chunk':>13} {'TTS RTF':>8} {'STT/utt':>8} {'first use':>9}")
        for r in rows:
            print(f"{r['language']:9} {r['tts']:7} {r['stt']:22} {r['metric']} {r['score']:6.1%} "
                  f"{r['metric']} {r['score_8k']:6.1%} {r['first_chunk_ms']:10.0f} ms {r['rtf']:8.2f} "
                  f"{r['stt_ms']:5.0f} ms {r['first_use_s']:7.1f} s")
        for r in rows:
            for said, heard in r["examples"]:
                print(f"  {r['language']}: {said!r} -> {heard!r}")
        print(f"this (event loop's) process: {english_only_rss // 2**20} MiB after English, "
              f"{process_rss_bytes(os.getpid()) // 2**20} MiB after the other languages")
        print("resident memory of the workers (MiB):")
        pools = [("whisper tiny.en", p) for p in stt.get("whisper").worker_pools()]  # type: ignore[attr-defined]
        if languages:
            multi = stt.local_for(languages[0])
            pools += [("whisper multilingual", p) for p in multi.worker_pools()[::2]]  # type: ignore[attr-defined]
        pools += [("piper", tts.get("piper").worker_pool())]  # type: ignore[attr-defined]
        if "ja-JP" in languages:
            pools.append(("kokoro", tts.get("kokoro").worker_pool()))  # type: ignore[attr-defined]
        for label, pool in pools:
            print(f"  {label:22} {pool.name:8} {[process_rss_bytes(pid) // 2**20 for pid in pool.pids()]}")
        await tts.aclose()
        await stt.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default=",".join(SAMPLES), help="comma-separated BCP 47 tags")
    asyncio.run(main(parser.parse_args().languages.split(",")))
