"""ai_talk turn latency, as a caller lives it: the caller's end of speech -> the AI's first audio at the caller.

Run: .venv/bin/python bench/ai_turn_latency.py [--turns 20] [--local-turns 3] [--quick] [--set VOIPBIN_X=v ...]
     [--vad-config '{"stop_secs": 0.5}'] [--smart-turn]

What users run: a ``voipbin sandbox`` process (tests/tests_support/processes.py; SQLite, its own
whisper, piper and VAD workers) whose trunk is this process's SIP UA (the carrier). The seed number's
flow is ``answer`` + ``ai_talk``; the carrier calls it (real INVITE and G.711 RTP on 127.0.0.1) and
says LibriVox questions (Debian pocketsphinx-testdata), one per turn, each once the AI's answer has
been played out. The LLM is a local server speaking OpenAI's streaming wire
(``serve_in_thread(openai_app(...))``, ``VOIPBIN_LLM_BASE_URLS=openai=<url>/v1``) whose first token
comes 150 ms after the request. Every 20 ms frame the carrier sends and hears is timed on one clock:

* end to end: the caller's last voiced frame sent -> the first voiced frame of the AI heard ("voiced":
  RMS above 300, about -40 dBFS; the recordings fade out below it over 100-200 ms, which the VAD may
  still count as speech), and the AI's lead-in heard (its first frame with any sound -> first voiced);
* the stages the sandbox records per turn (``GET /v1.0/aicalls/{id}``, ``metadata.turns[*].latency_ms``,
  from the VAD's end of speech): ``paused_ms`` (the preemptive reply started on the caller's pause: negative,
  before the VAD's end), ``final_ms`` (STT final: the turn's end), ``llm_first_ms``, ``tts_first_ms``,
  ``audio_first_ms`` (first AI frame sent);
* the floor without the preemptive reply: VAD hangover (the AI's ``vad_config.stop_secs``, default 0.2 s)
  + STT final + 150 ms + TTS first chunk (medians), and the target (p50 <= 700 ms); what is left of the
  end-to-end p50 once ``audio_first_ms`` and the lead-in are taken off: the caller's end of speech -> the
  VAD's (hangover, fading tail, pipeline lag).

The first turn of each call warms the engines up and is not counted. ``--set VOIPBIN_NAME=VALUE`` passes
a setting to the sandbox (e.g. ``VOIPBIN_VAD_MIN_SILENCE_MS``, ``VOIPBIN_STT_INTERIM_INTERVAL_MS``).

Then, for reference, a few turns with the offline ``local.default`` model (SmolLM2-135M in the
sandbox's LLM worker process, no server). ``--quick``: 5 turns, 1 local one (< 90 s).

What the AI says here ("Our office opens at nine in the morning.") is spoken as two units: "Our
office opens" first (the first unit ends before a phrase opener once three words came:
``voipbin.ai.talk.ClauseSplitter``), so ``tts_first_ms`` is the synthesis of those three words.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration" / "inbound"))

from inbound_support import Voice, place_call  # noqa: E402
from support import sandbox_with_trunk  # noqa: E402
from tests_support.frame_log import VOICED_RMS, FrameLog  # noqa: E402
from tests_support.llm_servers import API_KEY, LlmServer, Reply, openai_app, serve_in_thread  # noqa: E402
from voipbin.media.players import BufferPlayer, read_wav  # noqa: E402
from voipbin.sip.ua import UserAgent  # noqa: E402
from voipbin.ai.talk import vad_tuning  # noqa: E402

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
ANSWER = "Our office opens at nine in the morning."
FIRST_TOKEN_S = 0.15
TARGET_P50_MS = 700.0
PROMPT = "You are the receptionist of a dental clinic. Answer in one short sentence."
STAGES = ("paused_ms", "final_ms", "llm_first_ms", "tts_first_ms", "audio_first_ms")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def line(name: str, ms: list[float], note: str = "") -> None:
    if not ms:
        print(f"  {name:44s} (no data)")
        return
    print(f"  {name:44s} p50 {statistics.median(ms):7.1f} ms  p95 {pct(ms, 0.95):7.1f} ms  max {max(ms):7.1f} ms"
          f"  (n={len(ms)}){'  ' + note if note else ''}")


def question(path: Path) -> BufferPlayer:
    """A recording from its first voiced frame (no lead-in: turns start on time)."""
    samples, rate = read_wav(path)
    n = rate // 50
    frames = samples[:len(samples) // n * n].reshape(-1, n).astype(np.float64)
    return BufferPlayer(samples[int(np.argmax(np.sqrt((frames**2).mean(axis=1)) > VOICED_RMS)) * n:], rate)


async def setup(api: httpx.AsyncClient, engine_model: str, args: argparse.Namespace) -> str:
    """An AI on ``engine_model`` and the seed number's flow ``answer`` + ``ai_talk`` with it; the number."""
    r = await api.post("/v1.0/ais", json={
        "name": engine_model, "detail": "", "engine_model": engine_model, "engine_key": API_KEY,
        "init_prompt": PROMPT, "tts_type": "", "tts_voice_id": "", "stt_type": "", "parameter": {},
        "vad_config": args.vad_config, "smart_turn_enabled": args.smart_turn})
    r.raise_for_status()
    r = await api.post("/v1.0/flows", json={"name": "ai", "detail": "", "actions": [
        {"type": "answer"}, {"type": "ai_talk", "option": {"assistance_type": "ai", "assistance_id": r.json()["id"]}}]})
    r.raise_for_status()
    number = (await api.get("/v1.0/numbers")).json()["result"][0]
    (await api.put(f"/v1.0/numbers/{number['id']}", json={"call_flow_id": r.json()["id"]})).raise_for_status()
    return str(number["number"])


async def converse(api: httpx.AsyncClient, trunk: UserAgent, sip_port: int, number: str,
                   turns: int) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """One call of ``turns`` turns after a warm-up one: per turn, end to end and the TTS lead-in heard
    (ms, caller clock), and the aicall's stage latencies."""
    known = {a["id"] for a in (await api.get("/v1.0/aicalls", params={"page_size": 100})).json()["result"]}
    voice, ear = Voice(), FrameLog()
    call = await place_call(trunk, SimpleNamespace(sip=SimpleNamespace(port=sip_port)), number, voice)
    call.rtp.add_inbound_consumer(ear)
    e2e: list[float] = []
    lead: list[float] = []  # the AI's first frame with any sound -> its first voiced frame (TTS lead-in)
    try:
        await asyncio.wait_for(call.answered.wait(), 15)
        await ear.until(lambda g: len(g.frames) >= 25)  # media flowing for half a second
        for i in range(turns + 1):  # the first one warms the engines up: not counted
            asked = question(LIBRIVOX[i % len(LIBRIVOX)])
            start = voice.say(asked)
            await asyncio.wait_for(asked.wait(), 60)  # said to its end
            said_end = voice.sent.voiced_times(start)[-1]
            mark = len(ear.frames)
            await ear.until(lambda g, m=mark: g.voiced_since(m) > 0, timeout=60)
            first = ear.voiced_times(mark)[0]
            lead.append((first - next(at for at, level in ear.frames[mark:] if level > 1)) * 1000)
            await ear.until(lambda g: g.trailing_silence() >= 40, timeout=120)  # the answer played out, 0.8 s quiet
            e2e.append((first - said_end) * 1000)
            print(f"    {'warm-up' if i == 0 else f'turn {i:2d}'}: {e2e[-1]:6.0f} ms (its first {lead[-1]:.0f} ms"
                  " of sound below speech level)", flush=True)
    finally:
        listed = (await api.get("/v1.0/aicalls", params={"page_size": 100})).json()["result"]
        aicall = next((a for a in listed if a["id"] not in known), None)
        calls = (await api.get("/v1.0/calls", params={"page_size": 100})).json()["result"]
        for c in calls:
            if c["status"] == "progressing":
                await api.post(f"/v1.0/calls/{c['id']}/hangup")
        call.rtp.close()
    stages = []
    if aicall is not None:
        got = (await api.get(f"/v1.0/aicalls/{aicall['id']}")).json()
        stages = [t["latency_ms"] for t in got["metadata"]["turns"]][1:]
    return e2e[1:], lead[1:], stages


def report(title: str, e2e: list[float], lead: list[float], stages: list[dict[str, float]], *,
           first_token_ms: float | None, hangover: float) -> None:
    print(f"\n{title}")
    line("caller end of speech -> first AI audio heard", e2e,
         f"target p50 <= {TARGET_P50_MS:.0f} ms" if first_token_ms is not None else "")
    line("AI's first sound -> its first voiced frame", lead, "(TTS lead-in, heard)")
    print("  stages (sandbox, from the VAD's end of speech):")
    for name in STAGES:
        line(f"    {name}", [t[name] for t in stages if name in t])
    if first_token_ms is None or not stages:
        return
    final = statistics.median(t.get("final_ms", 0.0) for t in stages)
    tts_chunk = statistics.median(t["tts_first_ms"] - t["llm_first_ms"] for t in stages
                                  if "tts_first_ms" in t and "llm_first_ms" in t)
    floor = hangover + final + first_token_ms + tts_chunk
    print(f"  floor without the preemptive reply = VAD hangover {hangover:.0f} + STT final {final:.0f} + first token"
          f" {first_token_ms:.0f} + TTS first chunk {tts_chunk:.0f} = {floor:.0f} ms")
    audio_first = statistics.median(t["audio_first_ms"] for t in stages if "audio_first_ms" in t)
    gap = statistics.median(e2e) - audio_first - statistics.median(lead)
    print(f"  caller end of speech -> VAD end of speech (p50 end to end - audio_first_ms - TTS lead-in; hangover,"
          f" the recording's fading tail, VAD and RTP lag): {gap:.0f} ms")
    verdict = "MET" if statistics.median(e2e) <= TARGET_P50_MS else "MISSED"
    print(f"  target p50 <= {TARGET_P50_MS:.0f} ms: {verdict} (p50 {statistics.median(e2e):.0f} ms)")


async def main_async(args: argparse.Namespace) -> None:
    server = LlmServer(replies=[Reply(tokens=[ANSWER.split(" ")[0]] + [" " + w for w in ANSWER.split(" ")[1:]],
                                      first_token_delay_s=FIRST_TOKEN_S)])
    hangover = (vad_tuning(args.vad_config, smart_turn=args.smart_turn).min_silence_s or 0.0) * 1000
    with serve_in_thread(openai_app(server)) as llm_url, tempfile.TemporaryDirectory() as tmp:
        async with sandbox_with_trunk(Path(tmp), {"VOIPBIN_LLM_BASE_URLS": f"openai={llm_url}/v1", **args.settings},
                                      start_timeout_s=60) as (sandbox, trunk):
            sip_port = sandbox.sip_port
            token = await asyncio.to_thread(sandbox.login)
            async with httpx.AsyncClient(base_url=sandbox.base_url, params={"token": token}, timeout=30) as api:
                number = await setup(api, "openai.gpt-5-mini", args)
                print(f"{args.turns} turns, LLM: local OpenAI-compatible server, first token after "
                      f"{FIRST_TOKEN_S * 1000:.0f} ms; vad_config {args.vad_config or '{} (defaults)'}, "
                      f"smart turn {'on' if args.smart_turn else 'off'}")
                e2e, lead, stages = await converse(api, trunk, sip_port, number, args.turns)
                report("scripted OpenAI-compatible server (first token 150 ms):", e2e, lead, stages,
                       first_token_ms=FIRST_TOKEN_S * 1000, hangover=hangover)
                if args.local_turns:
                    number = await setup(api, "local.default", args)
                    print(f"\n{args.local_turns} turns, LLM: offline local.default (SmolLM2-135M in the sandbox's LLM worker)")
                    e2e, lead, stages = await converse(api, trunk, sip_port, number, args.local_turns)
                    report("offline local.default (reference):", e2e, lead, stages, first_token_ms=None,
                           hangover=hangover)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, help="turns with the scripted server (default 20, --quick 5)")
    parser.add_argument("--local-turns", type=int, help="turns with local.default (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="5 turns, 1 local one (< 90 s)")
    parser.add_argument("--vad-config", type=json.loads, default={}, metavar="JSON",
                        help="the AI's vad_config (default {}: stop_secs 0.2 as upstream)")
    parser.add_argument("--smart-turn", action="store_true", help="the AI's smart_turn_enabled")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="VOIPBIN_NAME=VALUE",
                        help="a setting of the sandbox (e.g. VOIPBIN_VAD_MIN_SILENCE_MS=200); repeatable")
    args = parser.parse_args()
    args.settings = dict(item.split("=", 1) for item in args.settings)
    args.turns = args.turns if args.turns is not None else 5 if args.quick else 20
    args.local_turns = args.local_turns if args.local_turns is not None else 1 if args.quick else 3
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
