"""Speakings: streaming TTS injected into a live call (``/v1.0/speakings``, seed 004).

``service.SpeakingService`` owns rows, rules and events; ``pipeline.SpeakingPipeline`` is the
part on the media pod (text queue -> synthesizer -> players in the call's mixers).
"""

from voipbin.speakings.service import SpeakingService

__all__ = ["SpeakingService"]
