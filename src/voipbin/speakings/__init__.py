"""Speakings: streaming TTS injected into a live call (``/v1.0/speakings``, seed 004).

``service.SpeakingService`` owns rows, rules and events; ``pipeline.SpeakingPipeline`` is the
part on the media pod (text queue -> synthesizer -> players in the call's mixers), also used by the
``talk`` action (``pipeline.speak_once``). Import the modules themselves: this package imports
nothing, so calls/ can use the pipeline without importing the service (which imports calls/).
"""
