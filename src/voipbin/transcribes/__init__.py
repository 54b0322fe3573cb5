"""Live transcription of calls: ``/v1.0/transcribes``, ``/v1.0/transcripts`` and the flow actions.

``service.TranscribeService`` owns the rows and events; ``pipeline.TranscribeSession`` is the
part that runs on the media pod (call audio -> STT streams -> speech events).
"""

from voipbin.transcribes.service import TranscribeService

__all__ = ["TranscribeService"]
