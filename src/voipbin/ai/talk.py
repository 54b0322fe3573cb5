"""The live side of ``ai_talk``: one AI conversation on one answered call (the turn loop).

Stages (pipecat style)::

    caller RTP -> STT stream (VAD-segmented: speech started / interim / ended / final) ─┐
                                                                                        v
    history + final transcript -> LLM stream (token by token, tool calls) -> clauses -> TTS
                                                                                        v
    StreamPlayer -> PausableSource -> the call's outbound mixer (what the caller hears)

* **Preemptive reply**: when the caller falls silent, the STT stream hands over what was said so far
  (``SpeechPaused``, ~0.1 s into the silence) while the VAD still waits out its hangover to confirm the
  end of the turn. The reply starts then (LLM and TTS) with its voice held; the final transcript, if it
  is the same text, releases it at once, so the LLM's first token and the first synthesized chunk are
  ready when the turn ends instead of after it. Speech resuming (``SpeechResumed``) or a different final
  discards the held reply unheard; nothing of it is stored and its tools wait for the release.
* **Smart turn** (an AI's ``smart_turn_enabled``): the VAD's end of speech (``stop_secs`` 0.2 s) is only a
  candidate; :mod:`voipbin.speech.smart_turn` judges from the last 8 s of the caller's audio whether the
  turn is complete. If not, the text waits and the next utterance joins it; ``SMART_TURN_STOP_S`` of
  silence ends the turn anyway.
* **Clauses**: the reply is spoken as it streams. The first unit of a reply is short: it ends at its
  first clause break (``, ; :`` after at least two words), its sentence end, or, before any punctuation,
  before a word that opens a phrase once three words came ("Our office opens | at nine in the
  morning."); later units end at sentence ends (:class:`ClauseSplitter`). The first audio waits neither
  for the whole reply nor for the synthesis of a whole first sentence (piper's time grows with the
  audio's length); a unit that goes on with the sentence the previous one left open starts without the
  voice's lead-in silence, so the seam sounds like a comma's pause, not a new sentence.
* **Barge-in**: caller audio while the AI speaks pauses its voice at once (the next 20 ms tick is
  silent): ``LOUD_FRAMES`` loud frames in a row (60 ms above ``LOUD_RMS``, an energy gate on the
  receive path, faster than the VAD's start) or the VAD's speech start, whichever comes first.
  Speech still going ``barge_in_s`` later (default 0.3 s), or a final transcript, commits the
  interruption: the LLM stream and synthesis are cancelled and the player is flushed; a sound that
  ended sooner (noise, a cough) was a false interruption and the AI's voice resumes where it paused.
* **History**: what was actually played goes into the conversation, not what was generated: a reply
  cut by a barge-in keeps the units played in full and, of the unit playing when it was cut, the share
  of its words its played share of audio suggests.
* **Errors**: an LLM error (timeout to first token, rate limit, provider down) ends the turn with a
  spoken apology and a ``notification`` message (``aimessage_created``); the call goes on.

Callers supply the engines and three callbacks (``on_message`` for each conversation message,
``on_turn`` with token usage and stage latencies per turn, ``run_tool`` for tool calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from voipbin.llm.base import ChatMessage, ChatModel, Finished, LlmError, TextDelta, ToolCall, ToolSpec, Usage
from voipbin.media.pausable import PausableSource
from voipbin.media.players import StreamPlayer
from voipbin.media.session import RtpSession
from voipbin.speech.stt.base import (
    FinalTranscript,
    Recognizer,
    SpeechEnded,
    SpeechEvent,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptDropped,
    VadTuning,
)
from voipbin.speakings.pipeline import trim_leading_silence
from voipbin.speech.tts.base import Synthesizer

log = structlog.get_logger(__name__)

#: caller speech shorter than this during playback is a false interruption (the AI resumes)
BARGE_IN_S = 0.3
#: the energy gate: this many 20 ms caller frames in a row above LOUD_RMS pause the AI's voice
LOUD_FRAMES = 3
LOUD_RMS = 500.0
#: tool round trips one reply may make before it must answer in words
MAX_TOOL_ROUNDS = 4
#: messages kept besides the system prompt (older ones are dropped, oldest first)
MAX_HISTORY = 40
#: the first unit may end before a phrase opener once it has this many words (see ClauseSplitter)
FIRST_UNIT_MIN_WORDS = 3
#: words that open a phrase: a first unit without punctuation yet may end before one of them
PHRASE_OPENERS = frozenset(
    "about after and at because before but by for from if in into on or since so until when where which while with"
    .split())
#: words that bind to the next one: a unit never ends on one ("Your cleaning is | on Monday" is heard wrong)
BINDING_WORDS = frozenset(
    "a an the is are was were be been am to of my your our their his her its this that these those not no "
    "very as can will would should could do does did has have had i we you he she they it i'm we're you're it's"
    .split())
#: speaking rate assumed for a unit cut before its length is known (words per second)
WORDS_PER_S = 2.5
APOLOGY = "Sorry, I am having trouble answering right now. Please try again in a moment."
#: an AI's ``vad_config`` fields left out take these (upstream's documented Pipecat defaults)
VAD_DEFAULTS = {"confidence": 0.7, "start_secs": 0.2, "stop_secs": 0.2}
#: with smart turn, the VAD's stop is forced to this (what the model was trained with, as upstream does)
SMART_TURN_VAD_STOP_S = 0.2
#: with smart turn, silence after which an incomplete-looking turn ends anyway (Pipecat's default)
SMART_TURN_STOP_S = 3.0
#: caller audio kept for the smart turn model (its window)
HEARD_S = 8.0

TurnCheck = Callable[[bytes, int], Awaitable[bool]]
"""``(PCM16 of the caller's last seconds, sample rate) -> is the turn complete?``"""


def vad_tuning(vad_config: dict[str, float], *, smart_turn: bool = False) -> VadTuning:
    """How the caller's speech is segmented, from an AI's ``vad_config`` (``AIManagerVADConfig``):
    ``confidence`` -> the speech probability threshold, ``start_secs`` -> speech needed to start an
    utterance, ``stop_secs`` -> the silence that ends it (the end-of-turn hangover). Omitted fields take
    :data:`VAD_DEFAULTS`. ``min_volume`` (Pipecat's loudness floor) is stored, not applied: barge-in
    uses its own energy gate (``LOUD_RMS``). No interim text (the turn loop reads none). With
    ``smart_turn``, ``stop_secs`` is :data:`SMART_TURN_VAD_STOP_S` whatever is given."""
    given = {**VAD_DEFAULTS, **vad_config}
    if smart_turn:
        given["stop_secs"] = SMART_TURN_VAD_STOP_S
    return VadTuning(threshold=given["confidence"], min_speech_s=given["start_secs"],
                     min_silence_s=given["stop_secs"], interim=False)

OnMessage = Callable[..., Awaitable[None]]
"""``on_message(role=, content=, direction=, tool_calls=[], tool_call_id="")``."""


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call did: ``result`` goes back to the LLM; ``end`` ends the conversation
    (``stop_service``, ``stop_flow``, ``connect_call``) once the reply in progress has been played."""

    result: str
    end: str = ""


RunTool = Callable[[ToolCall], Awaitable[ToolOutcome]]


class ClauseSplitter:
    """Cuts streamed text into units to synthesize: the first short (a clause break, a sentence end, or
    before a phrase opener after :data:`FIRST_UNIT_MIN_WORDS` words), the rest at sentence ends."""

    _SENTENCE = re.compile(r"[.!?…](?:[\"'”’)\]]*)\s+")
    _CLAUSE = re.compile(r"[,;:—]\s+")
    _WORD = re.compile(r"\S+")

    def __init__(self) -> None:
        self._buffer = ""
        self._first = True

    def push(self, text: str) -> list[str]:
        """Add streamed ``text``; the units it completed."""
        self._buffer += text
        units: list[str] = []
        while (cut := self._cut()) is not None:
            unit, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if unit:
                units.append(unit)
                self._first = False
        return units

    def _cut(self) -> int | None:
        """Where the next unit ends in the buffer (an index), or None while it is not complete."""
        sentence = self._SENTENCE.search(self._buffer)
        cuts = [sentence.end()] if sentence is not None else []
        if self._first:
            clause = next((c for c in self._CLAUSE.finditer(self._buffer)
                           if len(self._buffer[:c.start()].split()) >= 2), None)
            if clause is not None:
                cuts.append(clause.end())
            phrase = self._phrase_cut()
            if phrase is not None:
                cuts.append(phrase)
        return min(cuts) if cuts else None

    def _phrase_cut(self) -> int | None:
        """The end of the word before the first phrase opener that may end the first unit."""
        words = list(self._WORD.finditer(self._buffer))
        for before, word in zip(words[FIRST_UNIT_MIN_WORDS - 1:], words[FIRST_UNIT_MIN_WORDS:]):
            if word.end() == len(self._buffer):
                return None  # the word may still grow ("in" -> "inside")
            if word.group().lower() in PHRASE_OPENERS and before.group().lower() not in BINDING_WORDS:
                return before.end()
        return None

    def flush(self) -> str:
        """What is left at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest


def continues_sentence(previous: str) -> bool:
    """Whether the unit after ``previous`` goes on with its sentence (``previous`` ends without a
    sentence end or clause break: it was cut before a phrase opener)."""
    return bool(previous) and not re.search(r"[.!?…,;:—][\"'”’)\]]*$", previous)


@dataclass
class _Unit:
    """One synthesized unit of a reply and where its audio sits in the player's output (frames)."""

    text: str
    start: int = 0
    end: int | None = None


def played_text(units: Sequence[_Unit], frames_played: int) -> str:
    """The words of ``units`` a caller heard once ``frames_played`` frames were sent: whole units,
    then the share of the cut unit's words matching its played share of audio."""
    words: list[str] = []
    for unit in units:
        if unit.end is not None and unit.end <= frames_played:
            words += unit.text.split()
        elif unit.start < frames_played:
            unit_words = unit.text.split()
            if unit.end is not None:
                count = len(unit_words) * (frames_played - unit.start) / max(1, unit.end - unit.start)
            else:  # still being synthesized: its length is unknown, estimate from a speaking rate
                count = (frames_played - unit.start) * 0.02 * WORDS_PER_S
            words += unit_words[:int(count)]
            break
        else:
            break
    return " ".join(words)


@dataclass
class TurnTimes:
    """Loop-clock times (s) of one turn's stages, to report latency per stage."""

    speech_end: float | None = None
    paused: float | None = None
    """when a preemptive reply started (``SpeechPaused``): before ``speech_end``, so negative ms"""
    final: float | None = None
    llm_first: float | None = None
    tts_first: float | None = None
    audio_first: float | None = None

    def latency_ms(self) -> dict[str, float]:
        """Per-stage milliseconds from the caller's end of speech (what is known of them)."""
        origin = self.speech_end if self.speech_end is not None else self.final
        out: dict[str, float] = {}
        if origin is None:
            return out
        for name in ("paused", "final", "llm_first", "tts_first", "audio_first"):
            value = getattr(self, name)
            if value is not None:
                out[f"{name}_ms"] = round((value - origin) * 1000, 1)
        return out


def _join(said: str, more: str) -> str:
    """The text of a turn so far and what the caller said next."""
    return " ".join(part for part in (said.strip(), more.strip()) if part)


async def _complete(check: asyncio.Task[bool]) -> bool:
    """A smart turn judgement; a failed one counts as complete (the turn is not held up)."""
    try:
        return await check
    except Exception:
        log.exception("smart turn check failed")
        return True


@dataclass
class _Held:
    """A preemptive reply whose voice waits for the end of the caller's turn."""

    text: str
    times: TurnTimes
    release: asyncio.Event
    turn: asyncio.Task[None] | None = None


@dataclass
class AiTalk:
    """One conversation (see the module docstring). Run it with :meth:`run`; it returns why it ended."""

    media: RtpSession
    recognizer: Recognizer
    synthesizer: Synthesizer
    llm: ChatModel
    language: str
    system_prompt: str
    on_message: OnMessage
    on_turn: Callable[[dict[str, int], dict[str, float]], Awaitable[None]]
    run_tool: RunTool
    tools: Sequence[ToolSpec] = ()
    voice: str | None = None
    vad: VadTuning | None = None
    smart_turn: TurnCheck | None = None
    barge_in_s: float = BARGE_IN_S
    history: list[ChatMessage] = field(default_factory=list)
    ended_reason: str = ""

    def __post_init__(self) -> None:
        self.player = StreamPlayer(input_rate_hz=self.synthesizer.sample_rate)
        self.output = PausableSource(self.player)
        self._ended = asyncio.Event()
        self._turn: asyncio.Task[None] | None = None
        self._units: list[_Unit] = []
        self._barge: asyncio.Task[None] | None = None
        self._times = TurnTimes()
        self._speech_end_at: float | None = None
        self._reply_origin = 0  # output frames sent before the current reply
        self._loud = 0  # caller frames above LOUD_RMS in a row
        self._last_loud_at = -1.0
        self._caller_speaking = False  # between the VAD's speech start and end
        self._held: _Held | None = None  # a preemptive reply waiting for the end of the turn
        self._heard: deque[bytes] = deque(maxlen=int(HEARD_S / 0.02))  # the caller's last 8 s (smart turn)
        self._rate = 8000
        self._turn_check: asyncio.Task[bool] | None = None
        self._unfinished = ""  # smart turn: what the caller said of a turn judged incomplete
        self._wait_more: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, duration_s: float | None = None, greeting: str = "") -> str:
        """Converse until a tool ends it, :meth:`terminate`, or ``duration_s``; returns the reason
        (``stop_service``, ``stop_flow``, ``connect_call``, ``terminated``, ``duration``)."""
        codec = self.media.codec
        rate = self._rate = codec.clock_rate if codec is not None else 8000
        stream = self.recognizer.open_stream(language=self.language, sample_rate=rate, vad=self.vad)
        self.media.outbound.add(self.output)
        self.media.add_inbound_consumer(stream.feed)
        self.media.add_inbound_consumer(self._on_caller_frame)
        listener = asyncio.get_running_loop().create_task(self._listen(stream))
        try:
            if greeting:
                self._turn = self._spawn(self._reply(greeting_only=greeting))
            try:
                async with asyncio.timeout(duration_s):
                    await self._ended.wait()
            except TimeoutError:
                self.ended_reason = "duration"
            return self.ended_reason
        finally:
            self.media.remove_inbound_consumer(stream.feed)
            self.media.remove_inbound_consumer(self._on_caller_frame)
            stream.close()
            listener.cancel()
            for task in [*self._tasks, *([self._turn] if self._turn else []), *([self._barge] if self._barge else [])]:
                task.cancel()
            await asyncio.gather(listener, *self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await stream.aclose()
            self.player.flush()
            self.media.outbound.remove(self.output)

    async def terminate(self) -> None:
        """End the conversation now (``POST /aicalls/{id}/terminate``, the call ending)."""
        self._end("terminated")

    def inject(self, role: str, content: str) -> None:
        """``POST /aimessages`` (the message is stored by the API already): a ``user`` message is
        answered as if the caller said it; a ``system`` message joins the history for the next turn."""
        if role == "system":
            self.history.append(ChatMessage(role="system", content=content))
            return
        self._start_turn(content, TurnTimes(), stored=True)

    def _end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.ended_reason = reason
            self._ended.set()

    # ------------------------------------------------------------------ preemptive reply

    def _hold(self, text: str, now: float) -> None:
        """Start replying to ``text`` with the voice held (see the module docstring)."""
        held = self._held = _Held(text, TurnTimes(paused=now), asyncio.Event())
        self.output.paused = True
        held.turn = self._start_turn(text, held.times, release=held.release)

    def _release(self, held: _Held, now: float) -> None:
        """The turn ended with the held text: let the reply be heard from the next 20 ms tick."""
        self._held = None
        held.times.final = now
        held.times.speech_end = self._speech_end_at
        self._speech_end_at = None
        self.output.paused = False
        held.release.set()

    async def _discard_held(self) -> None:
        """The caller went on (or said something else): drop the held reply unheard."""
        held, self._held = self._held, None
        if held is None:
            return
        if held.turn is not None and not held.turn.done():
            held.turn.cancel()
            await asyncio.gather(held.turn, return_exceptions=True)
        if self._turn is held.turn:
            self._turn = None
        self.player.flush()
        self._units = []
        self.output.paused = False

    # ------------------------------------------------------------------ listening, barge-in

    async def _listen(self, stream: Any) -> None:
        try:
            async for event in stream.events():
                try:
                    await self._on_speech(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("ai_talk speech event failed")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ai_talk transcription stream failed")

    def _speaking(self) -> bool:
        return (self._turn is not None and not self._turn.done()) or self.player.buffered_s > 0

    def _on_caller_frame(self, frame: bytes) -> None:
        """The energy gate (receive path, every 20 ms caller frame; must not block)."""
        if self.smart_turn is not None:
            self._heard.append(frame)
        if not self._speaking():
            self._loud = 0
            return
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        if float(np.sqrt(np.mean(samples * samples))) < LOUD_RMS:
            self._loud = 0
            return
        self._loud += 1
        self._last_loud_at = asyncio.get_running_loop().time()
        if self._loud >= LOUD_FRAMES:
            self._pause_for_barge_in()

    def _pause_for_barge_in(self) -> None:
        """The caller may be barging in: silence the AI now, decide ``barge_in_s`` later."""
        if not self.output.paused and (self._barge is None or self._barge.done()):
            self.output.paused = True
            self._barge = self._spawn(self._confirm_barge_in())

    async def _on_speech(self, event: SpeechEvent) -> None:
        now = asyncio.get_running_loop().time()
        if isinstance(event, SpeechStarted):
            if self._wait_more is not None:
                self._wait_more.cancel()  # the caller goes on with the turn judged incomplete
                self._wait_more = None
            await self._discard_held()
            self._caller_speaking = True
            if self._speaking():
                self._pause_for_barge_in()
        elif isinstance(event, SpeechPaused):
            if event.text.strip() and self._held is None and not self._speaking():
                self._hold(_join(self._unfinished, event.text), now)
        elif isinstance(event, SpeechResumed):
            await self._discard_held()
        elif isinstance(event, SpeechEnded):
            self._caller_speaking = False
            self._speech_end_at = now
            if self.smart_turn is not None:  # judged while the final text is transcribed
                self._turn_check = self._spawn(self.smart_turn(b"".join(self._heard), self._rate))
        elif isinstance(event, FinalTranscript):
            text = _join(self._unfinished, event.text)
            check, self._turn_check = self._turn_check, None
            if check is not None and text and not await _complete(check):
                self._unfinished = text
                self._wait_more = self._spawn(self._end_turn_later(text))
                return
            self._unfinished = ""
            await self._end_turn(text, now)
        elif isinstance(event, TranscriptDropped) and self._held is not None:
            # the recognizer shed the turn's final (overload): answer what its pause was heard to say
            await self._end_turn(self._held.text, now)

    async def _end_turn_later(self, text: str) -> None:
        """Smart turn judged the turn incomplete: end it after ``SMART_TURN_STOP_S`` of silence, unless
        the caller goes on (``SpeechStarted`` cancels this)."""
        stop = self.vad.min_silence_s if self.vad is not None and self.vad.min_silence_s is not None else 0.0
        await asyncio.sleep(max(0.0, SMART_TURN_STOP_S - stop))  # a deliberate timer: the turn's last chance
        self._wait_more = None
        self._unfinished = ""
        await self._end_turn(text, asyncio.get_running_loop().time())

    async def _end_turn(self, text: str, now: float) -> None:
        """The caller's turn is over with ``text``: release the held reply made for it, else start one."""
        held = self._held
        if held is not None and held.text == text and held.turn is not None and not held.turn.done():
            self._release(held, now)
            return
        await self._discard_held()
        if text:
            times = TurnTimes(speech_end=self._speech_end_at, final=now)
            self._speech_end_at = None
            if self._speaking():
                await self._interrupt()
            self._start_turn(text, times)

    async def _confirm_barge_in(self) -> None:
        await asyncio.sleep(self.barge_in_s)  # a deliberate timer: is the caller still talking after it?
        self._barge = None
        recent = asyncio.get_running_loop().time() - self._last_loud_at < 0.1
        if self._caller_speaking or recent:
            await self._interrupt()
        elif self._held is None:  # a false interruption (noise, a cough): the AI's voice resumes where it paused
            self.output.paused = False

    async def _interrupt(self) -> None:
        """Commit a barge-in: stop the reply (LLM and TTS), flush the voice, keep what was played."""
        if self._barge is not None and self._barge is not asyncio.current_task():
            self._barge.cancel()
            self._barge = None
        played = played_text(self._units, self.output.frames_out - self._reply_origin)
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.cancel()
            await asyncio.gather(turn, return_exceptions=True)
        self.player.flush()
        self.output.paused = False
        if played and self._units:
            self.history.append(ChatMessage(role="assistant", content=played))
            await self.on_message(role="assistant", content=played, direction="outgoing")
        self._units = []

    # ------------------------------------------------------------------ replying

    def _start_turn(self, text: str, times: TurnTimes, *, stored: bool = False,
                    release: asyncio.Event | None = None) -> asyncio.Task[None]:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
        if release is None and self._held is not None:  # an injected message overtakes a held reply
            self._held = None
            self.player.flush()
            self.output.paused = False
        self._turn = self._spawn(self._reply(user_text=text, times=times, stored=stored, release=release))
        return self._turn

    async def _reply(self, *, user_text: str = "", greeting_only: str = "", times: TurnTimes | None = None,
                     stored: bool = False, release: asyncio.Event | None = None) -> None:
        """One turn: the caller's words (or a fixed greeting) in, the AI's reply spoken and stored
        (``stored``: the user message is stored already). With ``release`` (a preemptive reply) the
        user message joins the history, and is stored, only once it is set."""
        times = times or TurnTimes()
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self._units = []
        self._reply_origin = self.output.frames_out
        units: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = self._spawn(self._speak_units(units, times))
        admitted: asyncio.Task[None] | None = None
        try:
            if greeting_only:
                await units.put(greeting_only)
            else:
                pending = [ChatMessage(role="user", content=user_text)]
                if release is None:  # the turn is the caller's now: stored while the LLM is asked
                    self._admit_now(pending, stored=stored)
                else:
                    admitted = self._spawn(self._admit(pending, stored=stored, release=release))
                ending = await self._generate(units, usage, times, pending=pending, admitted=admitted)
                if admitted is not None:
                    await admitted
                if ending:
                    await units.put(None)
                    await speaker
                    await self.player.wait_drained()
                    self._end(ending)
                    return
            await units.put(None)
            await speaker
            await self.player.wait_drained()
            spoken = " ".join(u.text for u in self._units)
            if spoken:
                self.history.append(ChatMessage(role="assistant", content=spoken))
                await self.on_message(role="assistant", content=spoken, direction="outgoing")
            self._units = []
        except Exception as exc:  # an LLM error (or a failing engine): said, never a silent dead turn
            if isinstance(exc, LlmError):
                log.warning("ai_talk llm error", kind=exc.kind, error=str(exc)[:200])
                note = f"llm error ({exc.kind}): {exc}"
            else:
                log.exception("ai_talk turn failed")
                note = f"turn failed: {type(exc).__name__}: {exc}"
            await self.on_message(role="notification", content=note[:1000], direction="outgoing")
            if speaker.done():  # the TTS stage itself failed: a fresh one says the apology
                units = asyncio.Queue()
                speaker = self._spawn(self._speak_units(units, times))
            await units.put(APOLOGY)
            await units.put(None)
            with contextlib.suppress(Exception):
                await speaker
        finally:
            if not speaker.done():
                speaker.cancel()
            if admitted is not None and (not admitted.done() or admitted.cancelled()):
                admitted.cancel()  # a held reply discarded: it never was a turn
            else:
                await self.on_turn(usage, times.latency_ms())
            self._trim_history()

    def _admit_now(self, pending: list[ChatMessage], *, stored: bool) -> None:
        """Move the caller's message from ``pending`` into the history now; store it in the background
        (off the reply's critical path: the LLM request does not wait for the database). The store is
        not the reply's: a barge-in that cancels the reply does not cancel it."""
        message = pending.pop()
        self.history.append(message)
        if not stored:
            self._spawn(self.on_message(role="user", content=message.content, direction="incoming"))

    async def _admit(self, pending: list[ChatMessage], *, stored: bool, release: asyncio.Event | None = None) -> None:
        """Move the caller's message from ``pending`` into the history (and store it) once the turn is
        released (at once without ``release``)."""
        if release is not None:
            await release.wait()
        message = pending.pop()
        self.history.append(message)
        if not stored:
            await self.on_message(role="user", content=message.content, direction="incoming")

    def _trim_history(self) -> None:
        """Keep the last ``MAX_HISTORY`` messages, never starting with a tool result cut from its call."""
        if len(self.history) > MAX_HISTORY:
            del self.history[:len(self.history) - MAX_HISTORY]
            while self.history and self.history[0].role == "tool":
                del self.history[0]

    async def _generate(self, units: asyncio.Queue[str | None], usage: dict[str, int], times: TurnTimes, *,
                        pending: list[ChatMessage], admitted: asyncio.Task[None] | None) -> str:
        """Stream the LLM's reply into ``units``; run its tool calls (once the caller's message, still
        ``pending`` while a preemptive reply is held, is ``admitted``). Returns an end reason or ""."""
        for _ in range(MAX_TOOL_ROUNDS):
            splitter = ClauseSplitter()
            calls: list[ToolCall] = []
            said: list[str] = []
            async for event in self.llm.stream([*self._messages(), *pending], tools=self.tools):
                if times.llm_first is None:
                    times.llm_first = asyncio.get_running_loop().time()
                if isinstance(event, TextDelta):
                    for unit in splitter.push(event.text):
                        said.append(unit)
                        await units.put(unit)
                elif isinstance(event, ToolCall):
                    calls.append(event)
                elif isinstance(event, Usage):
                    usage["prompt_tokens"] += event.prompt_tokens
                    usage["completion_tokens"] += event.completion_tokens
                elif isinstance(event, Finished) and (rest := splitter.flush()):
                    said.append(rest)  # spoken now, not once the stream has closed
                    await units.put(rest)
            rest = splitter.flush()
            if rest:
                said.append(rest)
                await units.put(rest)
            if not calls:
                return ""
            if admitted is not None:
                await admitted  # tools act on the world: never for a reply the caller may not get
            call_dicts = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
            self.history.append(ChatMessage(role="assistant", content=" ".join(said), tool_calls=call_dicts))
            await self.on_message(role="assistant", content=" ".join(said), direction="outgoing", tool_calls=call_dicts)
            ending = ""
            for call in calls:
                outcome = await self.run_tool(call)
                self.history.append(ChatMessage(role="tool", content=outcome.result, tool_call_id=call.id))
                await self.on_message(role="tool", content=outcome.result, direction="outgoing", tool_call_id=call.id)
                ending = ending or outcome.end
            if ending:
                return ending
        return ""

    def _messages(self) -> list[ChatMessage]:
        return [ChatMessage(role="system", content=self.system_prompt), *self.history]

    async def _speak_units(self, units: asyncio.Queue[str | None], times: TurnTimes) -> None:
        """The TTS stage of one reply: each unit synthesized and fed to the player, in order."""
        previous = ""
        while (text := await units.get()) is not None:
            unit = _Unit(text, start=self._fed_frames())
            self._units.append(unit)
            continues, previous = continues_sentence(previous), text
            first_chunk = True
            async for chunk in self.synthesizer.synthesize(text, language=self.language, voice=self.voice):
                if times.tts_first is None:
                    # the reply's first audio: the voice's own lead-in silence (60-260 ms with piper) is cut
                    chunk = trim_leading_silence(chunk, self.synthesizer.sample_rate)
                    times.tts_first = asyncio.get_running_loop().time()
                    self.output.next_frame().add_done_callback(
                        lambda f: setattr(times, "audio_first", f.result()) if not f.cancelled() else None)
                elif first_chunk and continues:  # the pause is the previous unit's trailing silence
                    chunk = trim_leading_silence(chunk, self.synthesizer.sample_rate)
                first_chunk = False
                self.player.feed(chunk)
            self.player.end_utterance()
            unit.end = self._fed_frames()

    def _fed_frames(self) -> int:
        """Frames of this reply handed to the player so far (sent or waiting)."""
        return self.output.frames_out - self._reply_origin + int(self.player.buffered_s / 0.02)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
