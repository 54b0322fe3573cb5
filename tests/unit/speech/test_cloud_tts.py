"""Cloud TTS adapters against local servers speaking ElevenLabs, Google and Polly wire formats."""

import asyncio

import pytest
from pydantic import SecretStr

from voipbin.speech import SpeechConfigError, SpeechProviderError, SpeechSettings
from voipbin.speech.tts.aws import PollySynthesizer
from voipbin.speech.tts.elevenlabs import ElevenLabsSynthesizer
from voipbin.speech.tts.gcp import GcpSynthesizer

from .fakes import API_KEY, AWS_ACCESS_KEY, AWS_REGION, AWS_SECRET_KEY, Recorded, aws_app, elevenlabs_app, gcp_app, serve, tone_pcm


async def test_elevenlabs_streams_pcm_chunks_with_whole_samples() -> None:
    rec = Recorded()
    async with serve(elevenlabs_app(rec)) as url:
        tts = ElevenLabsSynthesizer(SpeechSettings(elevenlabs_api_key=SecretStr(API_KEY), elevenlabs_base_url=url))
        chunks = [c async for c in tts.synthesize("Hello there.", language="en-US", voice="AbCd1234")]
        await tts.aclose()
    assert tts.sample_rate == 16000
    assert all(len(c) % 2 == 0 for c in chunks)
    assert sum(len(c) for c in chunks) == 5 * len(tone_pcm(0.5)) - 2
    assert b"".join(chunks)[: len(tone_pcm(0.5)) - 2] == tone_pcm(0.5)[:-2]
    assert rec.requests == [
        {"voice_id": "AbCd1234", "text": "Hello there.", "model_id": "eleven_flash_v2_5", "language_code": "en"}
    ]


async def test_elevenlabs_default_voice_and_first_chunk_before_the_end() -> None:
    rec = Recorded()
    gate = asyncio.Event()
    async with serve(elevenlabs_app(rec, gate=gate)) as url:
        tts = ElevenLabsSynthesizer(SpeechSettings(elevenlabs_api_key=SecretStr(API_KEY), elevenlabs_base_url=url))
        stream = tts.synthesize("Hi.", language="en-US")
        first = await anext(stream)  # arrives while the server still holds the rest
        assert first and not gate.is_set()
        await stream.aclose()  # cancel mid-utterance: the connection is dropped
        gate.set()
        await rec.disconnected.wait()
        await tts.aclose()
    assert rec.requests[0]["voice_id"] == "21m00Tcm4TlvDq8ikWAM"


async def test_elevenlabs_bad_key_is_a_provider_error() -> None:
    async with serve(elevenlabs_app(Recorded())) as url:
        tts = ElevenLabsSynthesizer(SpeechSettings(elevenlabs_api_key=SecretStr("wrong"), elevenlabs_base_url=url))
        with pytest.raises(SpeechProviderError) as info:
            [c async for c in tts.synthesize("Hi.", language="en-US")]
        await tts.aclose()
    assert info.value.status == 401 and "Invalid API key" in str(info.value)


async def test_gcp_synthesizes_sentence_by_sentence_and_strips_the_wav_header() -> None:
    rec = Recorded()
    async with serve(gcp_app(rec)) as url:
        tts = GcpSynthesizer(SpeechSettings(gcp_api_key=SecretStr(API_KEY), gcp_tts_base_url=url))
        chunks = [c async for c in tts.synthesize("One. Two!", language="ko-kr", voice="ko-KR-Neural2-A")]
        await tts.aclose()
    assert chunks == [tone_pcm(0.3), tone_pcm(0.3)]  # PCM only, no RIFF header
    assert [r["input"]["text"] for r in rec.requests] == ["One.", "Two!"]
    assert rec.requests[0]["voice"] == {"languageCode": "ko-KR", "name": "ko-KR-Neural2-A"}
    assert rec.requests[0]["audioConfig"] == {"audioEncoding": "LINEAR16", "sampleRateHertz": 16000}


async def test_gcp_rejected_key_is_a_provider_error() -> None:
    async with serve(gcp_app(Recorded())) as url:
        tts = GcpSynthesizer(SpeechSettings(gcp_api_key=SecretStr("nope"), gcp_tts_base_url=url))
        with pytest.raises(SpeechProviderError, match="valid API key"):
            [c async for c in tts.synthesize("Hi.", language="en-US")]
        await tts.aclose()


def aws_settings(url: str, secret: str = AWS_SECRET_KEY) -> SpeechSettings:
    return SpeechSettings(
        aws_access_key_id=AWS_ACCESS_KEY,
        aws_secret_access_key=SecretStr(secret),
        aws_region=AWS_REGION,
        aws_polly_base_url=url,
    )


async def test_polly_signed_request_streams_pcm() -> None:
    rec = Recorded()
    async with serve(aws_app(rec)) as url:
        tts = PollySynthesizer(aws_settings(url))
        chunks = [c async for c in tts.synthesize("Hello. Bye.", language="en-GB")]
        await tts.aclose()
    assert b"".join(chunks) == tone_pcm(0.4) * 2
    assert rec.requests[0] == {
        "Engine": "neural", "LanguageCode": "en-GB", "OutputFormat": "pcm", "SampleRate": "16000",
        "Text": "Hello.", "TextType": "text", "VoiceId": "Amy",
    }  # fmt: skip


async def test_polly_wrong_secret_fails_the_signature_check() -> None:
    async with serve(aws_app(Recorded())) as url:
        tts = PollySynthesizer(aws_settings(url, secret="not-the-secret"))
        with pytest.raises(SpeechProviderError, match="signature mismatch") as info:
            [c async for c in tts.synthesize("Hello.", language="en-US")]
        await tts.aclose()
    assert info.value.status == 403


def test_polly_needs_a_voice_for_languages_without_a_default() -> None:
    tts = PollySynthesizer(aws_settings("http://127.0.0.1:9"))
    with pytest.raises(SpeechConfigError, match="voice_id"):
        tts.check(language="sw-KE")
    assert tts.check(language="sw-KE", voice="Zeina") == "sw-KE"


@pytest.mark.parametrize(
    ("cls", "variable"),
    [(ElevenLabsSynthesizer, "VOIPBIN_ELEVENLABS_API_KEY"), (GcpSynthesizer, "VOIPBIN_GCP_API_KEY"),
     (PollySynthesizer, "VOIPBIN_AWS_ACCESS_KEY_ID")],
)  # fmt: skip
def test_no_key_is_a_clear_config_error(cls: type, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SpeechConfigError, match=variable) as info:
        cls(SpeechSettings(elevenlabs_api_key=None, gcp_api_key=None, aws_access_key_id=None))
    assert isinstance(info.value, ValueError)
