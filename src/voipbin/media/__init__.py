"""Media layer: SDP offer/answer, RTP sessions, codecs, jitter buffer, media clock, players.

Knows nothing of SIP messages, customers or HTTP (DESIGN.md "Layout"). Audio inside is
PCM16 little-endian mono, 8000 Hz for G.711, in 20 ms frames of 160 samples (320 bytes).
"""
