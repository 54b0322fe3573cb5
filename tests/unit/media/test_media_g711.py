"""G.711 accuracy: bit-exact with CPython's audioop reference, known code points, SNR."""

import warnings

import numpy as np
import pytest

from voipbin.media.codecs import PcmaCodec, PcmuCodec, create_codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # reference implementation, deprecated but present in 3.11/3.12

ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_pcmu_encode_matches_audioop_for_every_sample() -> None:
    assert PcmuCodec().encode(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)


def test_pcma_encode_matches_audioop_for_every_sample() -> None:
    assert PcmaCodec().encode(ALL_PCM16) == audioop.lin2alaw(ALL_PCM16, 2)


def test_decode_tables_match_audioop() -> None:
    assert PcmuCodec().decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert PcmaCodec().decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("codec", "code", "pcm"),
    [
        (PcmuCodec(), 0x00, -32124),
        (PcmuCodec(), 0x80, 32124),
        (PcmuCodec(), 0xFF, 0),
        (PcmuCodec(), 0x7F, 0),
        (PcmaCodec(), 0xAA, 32256),
        (PcmaCodec(), 0x2A, -32256),
        (PcmaCodec(), 0xD5, 8),
        (PcmaCodec(), 0x55, -8),
    ],
)
def test_known_code_points(codec, code: int, pcm: int) -> None:
    assert np.frombuffer(codec.decode(bytes([code])), "<i2")[0] == pcm


def test_silence_codes() -> None:
    assert PcmuCodec().silence_payload() == b"\xff" * 160
    assert PcmaCodec().silence_payload() == b"\xd5" * 160


@pytest.mark.parametrize("codec", [PcmuCodec(), PcmaCodec()])
@pytest.mark.parametrize("amplitude", [1000, 8000, 30000])
def test_sine_snr(codec, amplitude: int) -> None:
    """G.711 gives ~38 dB SNR over a wide range of levels (ITU-T G.711 / G.712)."""
    t = np.arange(8000) / 8000
    tone = (amplitude * np.sin(2 * np.pi * 1004 * t)).astype(np.int16)
    decoded = np.frombuffer(codec.decode(codec.encode(tone.tobytes())), "<i2").astype(float)
    noise = decoded - tone
    snr_db = 10 * np.log10(np.sum(tone.astype(float) ** 2) / np.sum(noise**2))
    assert snr_db > 33


def test_frame_sizes_and_payload_types() -> None:
    for codec, pt in ((PcmuCodec(), 0), (PcmaCodec(), 8)):
        assert codec.payload_type == pt
        assert codec.clock_rate == 8000
        assert codec.SAMPLES_PER_FRAME == 160
        assert len(codec.encode(bytes(320))) == 160
        assert len(codec.decode(bytes(160))) == 320


def test_create_codec_by_name() -> None:
    assert isinstance(create_codec("pcmu"), PcmuCodec)
    assert create_codec("PCMA", 8).payload_type == 8
    with pytest.raises(KeyError):
        create_codec("G729")
