"""Cloud STT adapters against local servers speaking Google STT and Transcribe wire formats."""

import numpy as np
import pytest
from pydantic import SecretStr

from voipbin.speech import SpeechConfigError, SpeechProviderError, SpeechSettings
from voipbin.media.pcm import split_frames
from voipbin.speech.stt.aws import TranscribeRecognizer
from voipbin.speech.stt.base import FinalTranscript, SpeechEnded, SpeechInterim, SpeechStarted
from voipbin.speech.stt.gcp import GcpRecognizer

from .fakes import API_KEY, AWS_ACCESS_KEY, AWS_REGION, AWS_SECRET_KEY, Recorded, aws_app, gcp_app, serve


async def test_gcp_recognize_request_and_answer() -> None:
    rec = Recorded()
    async with serve(gcp_app(rec, transcript="good morning")) as url:
        stt = GcpRecognizer(SpeechSettings(gcp_api_key=SecretStr(API_KEY), gcp_stt_base_url=url))
        text = await stt.transcribe(b"\x01\x00" * 16000, language="en-gb")
        await stt.aclose()
    assert text == "good morning"
    assert rec.requests == [
        {"config": {"encoding": "LINEAR16", "sampleRateHertz": 16000, "languageCode": "en-GB"}, "audio_bytes": 32000}
    ]


async def test_gcp_bad_key_is_a_provider_error() -> None:
    async with serve(gcp_app(Recorded())) as url:
        stt = GcpRecognizer(SpeechSettings(gcp_api_key=SecretStr("bad"), gcp_stt_base_url=url))
        with pytest.raises(SpeechProviderError) as info:
            await stt.transcribe(b"\x00\x00" * 160, language="en-US")
        await stt.aclose()
    assert info.value.status == 403


def transcribe_settings(url: str) -> SpeechSettings:
    return SpeechSettings(
        aws_access_key_id=AWS_ACCESS_KEY,
        aws_secret_access_key=SecretStr(AWS_SECRET_KEY),
        aws_region=AWS_REGION,
        aws_transcribe_base_url=url.replace("http://", "ws://"),
    )


async def test_transcribe_stream_presigned_event_stream_round_trip() -> None:
    rec = Recorded()
    async with serve(aws_app(rec, partials=("good", "good morning"))) as url:
        stt = TranscribeRecognizer(transcribe_settings(url))
        stream = stt.open_stream(language="en-US", sample_rate=8000)
        pcm = (np.sin(np.arange(8000) / 5) * 5000).astype("<i2").tobytes()  # 1 s at 8 kHz
        for frame in split_frames(pcm, 8000):
            stream.feed(frame)
        stream.close()
        events = [e async for e in stream.events()]
    assert events == [
        SpeechStarted(0.1),
        SpeechInterim("good", 0.5),
        SpeechInterim("good morning", 1.5),
        SpeechEnded(1.2),
        FinalTranscript("good morning", 0.1, 1.2, "en-US"),
    ]
    query = rec.requests[0]
    assert query["language-code"] == "en-US" and query["media-encoding"] == "pcm"
    assert query["sample-rate"] == "16000" and query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert abs(rec.audio_bytes - 32000) <= 64  # resampled to 16 kHz
    assert rec.closed_streams == 1


async def test_transcribe_rejected_signature_is_a_provider_error() -> None:
    async with serve(aws_app(Recorded())) as url:
        settings = transcribe_settings(url)
        settings.aws_secret_access_key = SecretStr("wrong")
        stream = TranscribeRecognizer(settings).open_stream(language="en-US")
        stream.close()
        with pytest.raises(SpeechProviderError):
            [e async for e in stream.events()]


@pytest.mark.parametrize("cls", [GcpRecognizer, TranscribeRecognizer])
def test_no_key_is_a_clear_config_error(cls: type) -> None:
    with pytest.raises(SpeechConfigError, match="not configured"):
        cls(SpeechSettings(gcp_api_key=None, aws_access_key_id=None, aws_secret_access_key=None))
