"""The rate every recognizer works at. PCM basics (frame sizes, conversions, soxr resampling)
live in :mod:`voipbin.media.pcm`; codecs (G.711 and friends) in `voipbin.media`."""

STT_SAMPLE_RATE = 16000
"""Rate every recognizer works at internally (Hz)."""
