"""eSpeak NG TTS (local, ~100 languages): the `espeak-ng` program, streamed.

One `espeak-ng --stdout` process per request; its WAV output is read as it is produced
(espeak-ng synthesizes clause by clause), so the first chunk arrives long before the
text is done. Cancelling the iterator kills the process.
"""

import asyncio
import functools
import struct
import subprocess
from collections.abc import AsyncIterator

from voipbin.speech.errors import SpeechConfigError, SpeechProviderError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language
from voipbin.speech.tts.base import check_text

_READ_BYTES = 4096
_WAV_HEADER_BYTES = 44
# BCP 47 primary subtags that espeak-ng files under another code.
_ALIASES = {"zh": "cmn", "yue": "yue", "nb": "nb", "no": "nb", "fil": "tl"}


@functools.lru_cache(maxsize=4)
def espeak_voices(binary: str = "espeak-ng") -> frozenset[str]:
    """Language codes and voice names `espeak-ng --voices` lists (lower case), once per process.

    Raises:
        SpeechConfigError: the program is not installed.
    """
    try:
        out = subprocess.run(
            [binary, "--voices"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpeechConfigError(f"provider: espeak is not available ({exc})") from exc
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4:
            names.add(cols[1].lower())  # language code, e.g. en-us
            names.add(cols[3].lower())  # voice name, e.g. english-us
    return frozenset(names)


class EspeakSynthesizer:
    """`Synthesizer` backed by espeak-ng. PCM16 mono at 22050 Hz.

    `voice` may be None (the language's default voice), an espeak language code or voice
    name (``en-gb``, ``english-us``), optionally with a variant (``en-us+f3``).
    """

    name = "espeak"
    sample_rate = 22050

    def __init__(self, binary: str = "espeak-ng", *, words_per_minute: int = 165) -> None:
        self._binary = binary
        self._wpm = words_per_minute
        self._voices = espeak_voices(binary)

    def resolve_voice(self, language: str, voice: str | None) -> str:
        """The espeak-ng ``-v`` argument for a request. Raises `SpeechConfigError`."""
        tag = normalize_language(language)
        if voice:
            base = voice.split("+", 1)[0].lower()
            if base not in self._voices:
                raise SpeechConfigError(f"voice_id: espeak has no voice {voice!r}")
            return voice
        subtags = tag.lower().split("-")
        subtags[0] = _ALIASES.get(subtags[0], subtags[0])
        for n in range(len(subtags), 0, -1):
            candidate = "-".join(subtags[:n])
            if candidate in self._voices:
                return candidate
        raise UnsupportedLanguageError(f"language: espeak cannot speak {tag}")

    def check(self, *, language: str, voice: str | None = None) -> str:
        self.resolve_voice(language, voice)
        return normalize_language(language)

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        espeak_voice = self.resolve_voice(language, voice)
        check_text(text)
        # Started from a thread: fork/exec from the event loop's (large) process takes 2-5 ms,
        # a loop block; the text (<= 5000 characters) fits the pipe's buffer.
        proc = await asyncio.to_thread(
            self._start, [self._binary, "-v", espeak_voice, "-s", str(self._wpm), "--stdout"], text
        )
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        stdout = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), proc.stdout)
        try:
            header = await stdout.readexactly(_WAV_HEADER_BYTES)
            if header[:4] != b"RIFF" or header[36:40] != b"data":
                raise SpeechProviderError("espeak", "unexpected output (not a WAV stream)")
            (rate,) = struct.unpack("<I", header[24:28])
            if rate != self.sample_rate:
                raise SpeechProviderError("espeak", f"unexpected sample rate {rate}")
            odd = b""
            while chunk := await stdout.read(_READ_BYTES):
                data = odd + chunk
                usable = len(data) - len(data) % 2
                odd = data[usable:]
                if usable:
                    yield data[:usable]
            if await asyncio.to_thread(proc.wait) != 0:
                raise SpeechProviderError("espeak", f"exited with status {proc.returncode}")
        except asyncio.IncompleteReadError as exc:
            raise SpeechProviderError("espeak", "produced no audio") from exc
        finally:
            transport.close()
            if proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    @staticmethod
    def _start(args: list[str], text: str) -> subprocess.Popen:
        """Start espeak-ng with `text` on its stdin (runs on a thread)."""
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise SpeechProviderError("espeak", f"cannot start {args[0]}: {exc}") from exc
        assert proc.stdin is not None
        try:
            proc.stdin.write(text.encode("utf-8"))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it exited at once: its status says why
        return proc
