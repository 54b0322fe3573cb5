"""Amazon Transcribe streaming over WebSocket (SigV4-presigned URL, event stream frames).

Wire format: ``GET /stream-transcription-websocket?language-code=..&media-encoding=pcm
&sample-rate=16000`` presigned for service ``transcribe``; the client sends
``AudioEvent`` messages (raw PCM16 16 kHz payload; an empty one ends the stream); the
server sends ``TranscriptEvent`` messages whose JSON payload holds
``Transcript.Results[]`` with ``ResultId``, ``IsPartial``, ``StartTime``, ``EndTime`` and
``Alternatives[0].Transcript``. Transcribe segments speech itself: a new ResultId is
`SpeechStarted`, partials are `SpeechInterim`, the non-partial result is `SpeechEnded`
followed by `FinalTranscript`.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import connect

from voipbin.media.pcm import StreamResampler

from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.aws_auth import credentials, presigned_url
from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.eventstream import EventStreamBuffer, encode_message
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.base import (
    FinalTranscript,
    SpeechEnded,
    SpeechEvent,
    SpeechInterim,
    SpeechStarted,
    VadTuning,
)

PATH = "/stream-transcription-websocket"
SEND_CHUNK_BYTES = 3200  # 100 ms at 16 kHz: AWS recommends 50-200 ms per AudioEvent


def audio_event(pcm: bytes) -> bytes:
    """An ``AudioEvent`` message carrying `pcm` (empty = end of audio)."""
    return encode_message(
        {
            ":content-type": "application/octet-stream",
            ":event-type": "AudioEvent",
            ":message-type": "event",
        },
        pcm,
    )


class TranscribeRecognizer:
    """`Recognizer` for Amazon Transcribe streaming. Raises `SpeechConfigError` without keys."""

    name = "aws"

    def __init__(self, settings: SpeechSettings) -> None:
        self._creds = credentials(settings, self.name)
        self._region = settings.aws_region
        self._base_url = settings.transcribe_url.rstrip("/")

    def check(self, *, language: str) -> str:
        return normalize_language(language)

    def stream_url(self, language: str) -> str:
        """The presigned WebSocket URL for one stream (valid 5 minutes)."""
        query = urlencode(
            {
                "language-code": self.check(language=language),
                "media-encoding": "pcm",
                "sample-rate": str(STT_SAMPLE_RATE),
            }
        )
        return presigned_url(
            self._creds, service="transcribe", region=self._region, url=f"{self._base_url}{PATH}?{query}"
        )

    def open_stream(
        self, *, language: str, sample_rate: int = STT_SAMPLE_RATE, vad: VadTuning | None = None
    ) -> "TranscribeStream":
        """Transcribe segments the stream itself: ``vad`` tuning does not apply."""
        tag = self.check(language=language)
        return TranscribeStream(self.stream_url(tag), language=tag, sample_rate=sample_rate)


class TranscribeStream:
    """`TranscriptionStream` over one Transcribe WebSocket."""

    def __init__(self, url: str, *, language: str, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.language = language
        self._url = url
        self._resampler = StreamResampler(sample_rate, STT_SAMPLE_RATE)
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[SpeechEvent | Exception | None] = asyncio.Queue()
        self._closed = False
        self._started: set[str] = set()
        self._runner = asyncio.get_running_loop().create_task(self._run())

    def feed(self, frame: bytes) -> None:
        if self._closed:
            raise ValueError("stream is closed")
        if len(frame) % 2:
            raise ValueError("PCM16 frame with an odd number of bytes")
        self._inbox.put_nowait(frame)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.put_nowait(None)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (item := await self._outbox.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def aclose(self) -> None:
        self._closed = True
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner

    async def _run(self) -> None:
        try:
            async with connect(self._url, max_size=2**22) as ws:
                sender = asyncio.create_task(self._send(ws))
                try:
                    await self._receive(ws)
                finally:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender
        except (OSError, websockets.WebSocketException) as exc:
            self._outbox.put_nowait(SpeechProviderError("aws", f"transcribe stream failed: {exc!r}"))
        except SpeechProviderError as exc:
            self._outbox.put_nowait(exc)
        finally:
            self._outbox.put_nowait(None)

    async def _send(self, ws: websockets.ClientConnection) -> None:
        pending = b""
        while True:
            frame = await self._inbox.get()
            if frame is None:
                pending += self._resampler.flush()
                if pending:
                    await ws.send(audio_event(pending))
                await ws.send(audio_event(b""))
                return
            pending += self._resampler.process(frame)
            if len(pending) >= SEND_CHUNK_BYTES:
                await ws.send(audio_event(pending))
                pending = b""

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        buffer = EventStreamBuffer()
        async for data in ws:
            if isinstance(data, str):
                continue
            buffer.add_data(data)
            for message in buffer:
                headers = message.headers
                if headers.get(":message-type") == "exception":
                    detail = json.loads(message.payload or b"{}").get("Message", "")
                    raise SpeechProviderError("aws", f"{headers.get(':exception-type')}: {detail}")
                if headers.get(":event-type") == "TranscriptEvent":
                    self._on_transcript(json.loads(message.payload))

    def _on_transcript(self, event: dict) -> None:
        for result in event.get("Transcript", {}).get("Results", []):
            result_id = result.get("ResultId", "")
            alternatives = result.get("Alternatives") or [{}]
            text = alternatives[0].get("Transcript", "").strip()
            start, end = float(result.get("StartTime", 0.0)), float(result.get("EndTime", 0.0))
            if result_id not in self._started:
                self._started.add(result_id)
                self._outbox.put_nowait(SpeechStarted(start))
            if result.get("IsPartial", False):
                if text:
                    self._outbox.put_nowait(SpeechInterim(text, end))
            else:
                self._outbox.put_nowait(SpeechEnded(end))
                self._outbox.put_nowait(FinalTranscript(text, start, end, self.language))
