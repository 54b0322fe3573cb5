"""Helpers shared by the cloud adapters (ElevenLabs, Google Cloud, AWS).

Adapters speak the providers' real wire formats over httpx / websockets; base URLs come
from `SpeechSettings` so they can point at a gateway or a local test server.
"""

import json

import httpx
from pydantic import SecretStr

from voipbin.speech.errors import SpeechConfigError, SpeechProviderError


def require_key(provider: str, key: SecretStr | str | None, env: str) -> str:
    """Return the credential or raise `SpeechConfigError` naming the variable to set."""
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    if not value:
        raise SpeechConfigError(
            f"provider: {provider} is not configured on this server (set {env})"
        )
    return value


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Raise `SpeechProviderError` with the provider's own message for a non-2xx answer."""
    if response.is_success:
        return
    body = (await response.aread()).decode("utf-8", "replace")
    message = body[:500]
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        detail = data.get("error") or data.get("detail") or data
        if isinstance(detail, dict):
            message = str(detail.get("message") or detail)
        else:
            message = str(detail)
    raise SpeechProviderError(provider, f"HTTP {response.status_code}: {message}", status=response.status_code)


def pcm_from_wav(data: bytes) -> tuple[bytes, int]:
    """(PCM16 samples, sample rate) of a WAV file in memory (LINEAR16 answers are WAVs).

    Bytes that do not start with ``RIFF`` are returned unchanged with rate 0.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data, 0
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"fmt ":
            rate = int.from_bytes(data[pos + 12 : pos + 16], "little")
        elif chunk_id == b"data":
            end = min(pos + 8 + size, len(data))
            pcm = data[pos + 8 : end]
            return pcm[: len(pcm) - len(pcm) % 2], rate
        pos += 8 + size + (size & 1)
    raise SpeechProviderError("wav", "WAV without a data chunk")
