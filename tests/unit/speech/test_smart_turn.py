"""The smart turn model (Pipecat's smart-turn v3.2, from the pipecat-ai wheel) on real human speech at 8 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from voipbin.media.players import read_wav
from voipbin.speech.smart_turn import COMPLETE, bundled_model, is_turn_complete, turn_complete_probability

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def telephone(name: str, share: float = 1.0) -> bytes:
    """A LibriVox sentence at 8 kHz up to ``share`` of its voiced length, then 200 ms of silence (the VAD's stop)."""
    samples, rate = read_wav(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav")
    audio = soxr.resample(np.asarray(samples, dtype=np.int16), rate, 8000).astype(np.int16)
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160).astype(np.float32)
    end = (np.where(np.sqrt((frames**2).mean(axis=1)) > 300)[0][-1] + 1) * 160
    return np.concatenate([audio[: int(end * share)], np.zeros(1600, np.int16)]).tobytes()


def test_the_model_comes_from_the_installed_package() -> None:
    assert bundled_model().stat().st_size > 8_000_000


def test_a_finished_sentence_is_complete_and_the_same_cut_midway_is_not() -> None:
    # "had he married a more amiable woman he might have been made still more respectable than he was"
    assert turn_complete_probability(telephone("0920"), 8000) >= COMPLETE
    assert turn_complete_probability(telephone("0920", 0.55), 8000) < COMPLETE  # "... woman he might have"
    # "unless to be rather cold hearted and rather selfish is to be ill disposed"
    assert turn_complete_probability(telephone("0890"), 8000) >= COMPLETE
    assert turn_complete_probability(telephone("0890", 0.55), 8000) < COMPLETE


def test_the_judgement_is_deterministic() -> None:
    audio = telephone("0870")
    assert len({turn_complete_probability(audio, 8000) for _ in range(3)}) == 1


async def test_off_the_loop() -> None:
    assert await is_turn_complete(telephone("0920"), 8000)
    assert not await is_turn_complete(telephone("0920", 0.55), 8000)
