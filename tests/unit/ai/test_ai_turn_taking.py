"""ai_talk's turn-taking: the preemptive reply (started on the STT stream's pause, heard only once the
turn ends) and smart turn (an utterance judged incomplete waits for the rest of the turn).

The conversation runs on fakes at its edges (a scripted STT stream, an LLM that records what it was
asked and answers when told, a synthesizer of loud frames); the 20 ms sender is the test calling
``output.read_frame()``. What the caller hears is what that returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest

from voipbin.ai import talk as talk_module
from voipbin.ai.talk import AiTalk, ToolOutcome
from voipbin.llm.base import ChatMessage, Finished, FinishReason, TextDelta, ToolCall, ToolSpec
from voipbin.speech.stt.base import (
    FinalTranscript,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptDropped,
)

RATE = 8000
LOUD = (np.full(RATE // 50 * 10, 8000, dtype="<i2")).tobytes()  # 200 ms of loud PCM16


class ScriptedStream:
    sample_rate = RATE

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def feed(self, frame: bytes) -> None:
        pass

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Any]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def aclose(self) -> None:
        self.close()


class ScriptedRecognizer:
    name = "scripted"

    def __init__(self) -> None:
        self.stream = ScriptedStream()

    def check(self, *, language: str) -> str:
        return language

    def open_stream(self, *, language: str, sample_rate: int = 16000, vad: Any = None) -> ScriptedStream:
        return self.stream


class LoudSynthesizer:
    name = "loud"
    sample_rate = RATE

    def check(self, *, language: str, voice: str | None = None) -> str:
        return language

    async def synthesize(self, text: str, *, language: str, voice: str | None = None) -> AsyncIterator[bytes]:
        yield LOUD


class ScriptedLlm:
    """Answers each request with ``reply`` (the first with a call of ``tool``, if given); records requests."""

    provider = "fake"
    model = "gated"
    first_token_timeout_s = 5.0

    def __init__(self, reply: str = "Nine in the morning.", tool: str = "") -> None:
        self.reply = reply
        self.tool = tool
        self.requests: list[list[ChatMessage]] = []
        self.asked = asyncio.Event()
        self.answered = asyncio.Event()

    def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = (), **_: Any) -> AsyncIterator[Any]:
        self.requests.append(list(messages))
        self.asked.set()
        return self._events(len(self.requests))

    async def _events(self, n: int) -> AsyncIterator[Any]:
        if self.tool and n == 1:
            yield ToolCall(id="call-1", name=self.tool, arguments={})
        else:
            yield TextDelta(self.reply)
        self.answered.set()

    async def aclose(self) -> None:
        pass


class FakeMedia:
    codec = None

    def __init__(self) -> None:
        self.outbound = set()

    def add_inbound_consumer(self, consumer: Any) -> None:
        pass

    def remove_inbound_consumer(self, consumer: Any) -> None:
        pass


class ScriptedTurnCheck:
    """Smart turn answers, in order (then "complete"); records the audio it was asked about."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[int, int]] = []

    async def __call__(self, pcm: bytes, rate: int) -> bool:
        self.asked.append((len(pcm), rate))
        return self.answers.pop(0) if self.answers else True


class Conversation:
    def __init__(self, llm: ScriptedLlm, smart_turn: ScriptedTurnCheck | None = None, synthesizer: Any = None) -> None:
        self.recognizer = ScriptedRecognizer()
        self.llm = llm
        self.messages: list[tuple[str, str]] = []
        self.turns: list[dict[str, float]] = []
        self.tools_run: list[str] = []
        self.changed = asyncio.Condition()
        self.sound_frames = 0
        self.ticks = 0
        self.heard: list[bool] = []  # per tick: a frame with sound
        self.talk = AiTalk(media=FakeMedia(), recognizer=self.recognizer, synthesizer=synthesizer or LoudSynthesizer(), llm=llm,
                           language="en-US", system_prompt="Be brief.", on_message=self.on_message,
                           on_turn=self.on_turn, run_tool=self.run_tool, smart_turn=smart_turn)

    async def on_message(self, *, role: str, content: str, **_: Any) -> None:
        self.messages.append((role, content))
        await self._notify()

    async def on_turn(self, usage: dict[str, int], latency: dict[str, float]) -> None:
        self.turns.append(latency)
        await self._notify()

    async def run_tool(self, call: ToolCall) -> ToolOutcome:
        self.tools_run.append(call.name)
        await self._notify()
        return ToolOutcome(result="ok")

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def ticks_pass(self, n: int) -> None:
        after = self.ticks + n
        await self.until(lambda: self.ticks >= after)

    async def until(self, predicate: Any) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), 5)

    def say(self, *events: Any) -> None:
        for event in events:
            self.recognizer.stream.queue.put_nowait(event)

    async def send(self) -> None:
        """The media tick (sped up to 1 ms): what the caller hears, counted in frames with sound."""
        while True:
            frame = self.talk.output.read_frame()
            self.heard.append(frame is not None and any(frame))
            if self.heard[-1]:
                self.sound_frames += 1
            self.ticks += 1
            await self._notify()
            await asyncio.sleep(0.001)


@pytest.fixture
async def conversation() -> AsyncIterator[Any]:
    made: list[tuple[Conversation, asyncio.Task[str], asyncio.Task[None]]] = []

    def start(llm: ScriptedLlm | None = None, smart_turn: ScriptedTurnCheck | None = None,
              synthesizer: Any = None) -> Conversation:
        conv = Conversation(llm or ScriptedLlm(), smart_turn, synthesizer)
        loop = asyncio.get_running_loop()
        made.append((conv, loop.create_task(conv.talk.run()), loop.create_task(conv.send())))
        return conv

    yield start
    for conv, talk, sender in made:
        await conv.talk.terminate()
        await asyncio.wait_for(talk, 5)
        sender.cancel()


async def test_the_reply_is_prepared_during_the_pause_and_heard_only_when_the_turn_ends(conversation: Any) -> None:
    conv = conversation()
    conv.say(SpeechStarted(0.0), SpeechPaused("When do you open?", 1.2))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    assert conv.llm.requests[0][-1] == ChatMessage(role="user", content="When do you open?")
    await conv.until(lambda: conv.talk.player.buffered_s > 0)  # synthesized, waiting
    await conv.ticks_pass(20)
    assert conv.sound_frames == 0, "a held reply must not be heard before the end of the turn"
    assert conv.messages == [] and conv.talk.history == [], "nothing is stored before the turn ends"

    conv.say(SpeechEnded(1.2), FinalTranscript("When do you open?", 0.0, 1.2, "en-US"))
    await conv.until(lambda: conv.sound_frames > 0)
    assert len(conv.llm.requests) == 1, "the held reply is the turn's reply, not asked again"
    await conv.until(lambda: len(conv.turns) == 1)
    assert conv.messages == [("user", "When do you open?"), ("assistant", "Nine in the morning.")]
    assert conv.turns[0]["paused_ms"] <= 0 <= conv.turns[0]["final_ms"]


async def test_speech_resuming_discards_the_held_reply_unheard(conversation: Any) -> None:
    conv = conversation()
    conv.say(SpeechStarted(0.0), SpeechPaused("I would like", 0.8))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    await conv.until(lambda: conv.talk.player.buffered_s > 0)
    conv.say(SpeechResumed(1.0))
    await conv.until(lambda: conv.talk.player.buffered_s == 0)
    await conv.ticks_pass(20)
    assert conv.sound_frames == 0
    conv.say(SpeechEnded(2.0), FinalTranscript("I would like an appointment.", 0.0, 2.0, "en-US"))
    await conv.until(lambda: len(conv.turns) == 1)
    assert conv.messages[0] == ("user", "I would like an appointment.")
    assert [m for m in conv.messages if m[0] == "user"] == [("user", "I would like an appointment.")]
    assert conv.llm.requests[-1][-1].content == "I would like an appointment.", conv.messages
    assert len(conv.turns) == 1, "a discarded reply is not a turn"


async def test_a_different_final_replaces_the_held_reply(conversation: Any) -> None:
    conv = conversation()
    conv.say(SpeechStarted(0.0), SpeechPaused("Book me", 0.8))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    conv.say(SpeechEnded(0.9), FinalTranscript("Book me in.", 0.0, 0.9, "en-US"))
    await conv.until(lambda: len(conv.turns) == 1)
    assert [c for r, c in conv.messages if r == "user"] == ["Book me in."]
    assert len(conv.llm.requests) == 2


async def test_tools_of_a_held_reply_wait_for_the_end_of_the_turn(conversation: Any) -> None:
    conv = conversation(ScriptedLlm(tool="stop_service"))
    conv.say(SpeechStarted(0.0), SpeechPaused("Goodbye", 0.5))
    await asyncio.wait_for(conv.llm.answered.wait(), 5)
    for _ in range(20):
        await asyncio.sleep(0)  # let the reply reach its tool call
    assert conv.tools_run == [], "a tool must not act for a reply the caller may never get"
    conv.say(SpeechEnded(0.5), FinalTranscript("Goodbye", 0.0, 0.5, "en-US"))
    await conv.until(lambda: conv.tools_run == ["stop_service"])
    roles = [r for r, _ in conv.messages]
    assert roles[:3] == ["user", "assistant", "tool"], roles



async def test_smart_turn_joins_an_utterance_judged_incomplete_to_the_next(conversation: Any) -> None:
    check = ScriptedTurnCheck(False, True)
    conv = conversation(smart_turn=check)
    conv.talk._on_caller_frame(LOUD[:320])  # what the model hears: the caller's own frames
    conv.say(SpeechStarted(0.0), SpeechEnded(0.8), FinalTranscript("I would like", 0.0, 0.8, "en-US"))
    await conv.until(lambda: conv.talk._unfinished == "I would like")
    assert check.asked == [(320, RATE)] and conv.llm.requests == []
    conv.say(SpeechStarted(1.5), SpeechPaused("an appointment.", 2.4))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    assert conv.llm.requests[0][-1].content == "I would like an appointment."  # the held reply has it all
    conv.say(SpeechEnded(2.4), FinalTranscript("an appointment.", 1.5, 2.4, "en-US"))
    await conv.until(lambda: len(conv.turns) == 1)
    assert [c for r, c in conv.messages if r == "user"] == ["I would like an appointment."]
    assert len(conv.llm.requests) == 1


async def test_smart_turn_ends_an_incomplete_turn_after_the_stop_silence(conversation: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(talk_module, "SMART_TURN_STOP_S", 0.05)
    conv = conversation(smart_turn=ScriptedTurnCheck(False))
    conv.say(SpeechStarted(0.0), SpeechEnded(0.8), FinalTranscript("Well", 0.0, 0.8, "en-US"))
    await conv.until(lambda: len(conv.turns) == 1)
    assert [c for r, c in conv.messages if r == "user"] == ["Well"]


async def test_a_final_shed_under_overload_releases_the_held_reply(conversation: Any) -> None:
    conv = conversation()
    conv.say(SpeechStarted(0.0), SpeechPaused("When do you open?", 1.2))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    conv.say(SpeechEnded(1.2), TranscriptDropped("overloaded", 0.0, 1.2, "en-US"))
    await conv.until(lambda: conv.sound_frames > 0)
    await conv.until(lambda: len(conv.turns) == 1)
    assert [c for r, c in conv.messages if r == "user"] == ["When do you open?"]


class OpenEndedLlm(ScriptedLlm):
    """Streams ``reply`` and ``Finished``, then keeps the stream open (a connection still being drained)."""

    async def _events(self, n: int) -> AsyncIterator[Any]:
        yield TextDelta(self.reply)
        yield Finished(FinishReason.STOP)
        self.answered.set()
        await asyncio.Event().wait()


async def test_the_llm_is_asked_before_the_callers_message_is_stored(conversation: Any) -> None:
    conv = conversation()
    stored = asyncio.Event()
    store = conv.talk.on_message

    async def slow_store(**message: Any) -> None:
        if message["role"] == "user":
            await stored.wait()  # a slow database
        await store(**message)

    conv.talk.on_message = slow_store
    conv.say(SpeechStarted(0.0), SpeechEnded(1.0), FinalTranscript("When do you open?", 0.0, 1.0, "en-US"))
    await asyncio.wait_for(conv.llm.asked.wait(), 5)
    assert conv.llm.requests[0][-1] == ChatMessage(role="user", content="When do you open?")
    assert conv.messages == []
    stored.set()
    await conv.until(lambda: len(conv.turns) == 1)
    assert conv.messages == [("user", "When do you open?"), ("assistant", "Nine in the morning.")]


async def test_the_last_unit_is_spoken_when_the_reply_finishes_not_when_its_stream_closes(conversation: Any) -> None:
    conv = conversation(OpenEndedLlm("We open at nine."))
    conv.say(SpeechStarted(0.0), SpeechEnded(1.0), FinalTranscript("When do you open?", 0.0, 1.0, "en-US"))
    await asyncio.wait_for(conv.llm.answered.wait(), 5)
    await conv.until(lambda: conv.sound_frames > 0)


class LeadInSynthesizer(LoudSynthesizer):
    """Each unit: 200 ms of silence (a voice's lead-in), then 200 ms of sound."""

    async def synthesize(self, text: str, *, language: str, voice: str | None = None) -> AsyncIterator[bytes]:
        yield bytes(len(LOUD)) + LOUD


def _silent_runs(heard: list[bool]) -> list[int]:
    """Lengths of the silent stretches between the first and the last frame with sound."""
    first, last = heard.index(True), len(heard) - heard[::-1].index(True)
    runs, count = [], 0
    for sound in heard[first:last]:
        if sound and count:
            runs.append(count)
        count = 0 if sound else count + 1
    return runs


async def test_a_unit_that_goes_on_with_the_sentence_starts_without_the_voice_lead_in(conversation: Any) -> None:
    conv = conversation(ScriptedLlm("Our office opens at nine. Come early."), synthesizer=LeadInSynthesizer())
    conv.say(SpeechStarted(0.0), SpeechEnded(1.0), FinalTranscript("When do you open?", 0.0, 1.0, "en-US"))
    await conv.until(lambda: len(conv.turns) == 1)
    assert [u for r, u in conv.messages if r == "assistant"] == ["Our office opens at nine. Come early."]
    # "Our office opens" | "at nine." (the sentence goes on: 20 ms at most kept) | "Come early." (a new one: its lead-in)
    runs = _silent_runs(conv.heard)
    assert runs[-1] == 10 and sum(runs) <= 11, "".join("x" if h else "." for h in conv.heard)
