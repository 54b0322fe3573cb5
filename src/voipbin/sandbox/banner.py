"""What the sandbox banner says it simulates (HTTPS, the virtual PSTN, offline speech providers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voipbin.speech.settings import CLOUD_PROVIDERS, STT_PROVIDERS

if TYPE_CHECKING:
    from voipbin.config import Settings
    from voipbin.runtime import Runtime


def offline_providers(runtime: Runtime) -> list[str]:
    """Build the stand-ins of the cloud providers that have no key (one log line each, see
    `voipbin.speech.tts.registry.TtsRegistry.get`); return their names. Loads the local voice:
    call it off the event loop."""
    names = [p for p in CLOUD_PROVIDERS if runtime.tts.stands_in(p)]
    for name in names:
        runtime.tts.get(name)
        if name in STT_PROVIDERS and runtime.stt.stands_in(name):
            runtime.stt.get(name)
    return names


def banner_lines(settings: Settings, runtime: Runtime) -> list[str]:
    """The banner's lines about the simulated parts (blocking: see `offline_providers`)."""
    lines = []
    if settings.https_port:
        url = f"https://api.voipbin.test:{settings.https_port}"
        lines.append(f"HTTPS        {url}/v1.0   (self-signed certificate in {settings.data_dir()}):\n"
                     f"             curl -k --resolve api.voipbin.test:{settings.https_port}:127.0.0.1 "
                     f"{url}/auth/login ...")
    if runtime.virtual_pstn is not None:
        lines.append(f"PSTN         virtual: every tel destination rings ~{runtime.virtual_pstn.ring_s:g} s, answers and "
                     f"speaks LibriVox recordings;\n"
                     f"             what it hears is recorded in {runtime.virtual_pstn.recordings_dir}/")
    offline = offline_providers(runtime)
    if offline:
        lines.append(f"Speech       {', '.join(offline)} (no keys set): spoken by the local engines "
                     f"(piper, espeak), heard by whisper")
    return lines
