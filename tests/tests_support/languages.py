"""Sentences in the languages served offline, and how a round trip through them is judged.

A round trip: our TTS speaks a sentence in the language, our STT (opened in that language, VAD
segmentation included) hears it back; the text heard is scored against the sentence: word error
rate for languages written with spaces, character error rate (spaces ignored) for ja and ko. Both
engines are ours, so a good score shows intelligible synthesis *and* recognition only together.
Sentences avoid digits (a recognizer may write numbers either way).
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from typing import Any

import jiwer

from voipbin.media.pcm import resample, split_frames
from voipbin.speech.stt.base import FinalTranscript

STT_RATE_HZ = 16000
CHARACTER_SCORED = {"ja", "ko"}

SAMPLES: dict[str, list[str]] = {
    "es-ES": [
        "Buenos días, quisiera hablar con el departamento de ventas.",
        "Necesito cambiar la dirección de entrega de mi pedido.",
        "¿Puede llamarme mañana por la tarde, por favor?",
        "Gracias por su paciencia, enseguida le atiendo.",
        "La reunión se ha cancelado por la lluvia.",
        "Quiero cancelar mi suscripción a partir del próximo mes.",
    ],
    "fr-FR": [
        "Bonjour, je voudrais parler au service commercial.",
        "Je dois changer l'adresse de livraison de ma commande.",
        "Pouvez-vous me rappeler demain après-midi, s'il vous plaît ?",
        "Merci de votre patience, un conseiller va vous répondre.",
        "La réunion a été annulée à cause de la pluie.",
        "Je souhaite résilier mon abonnement le mois prochain.",
    ],
    "de-DE": [
        "Guten Tag, ich möchte mit der Verkaufsabteilung sprechen.",
        "Ich muss die Lieferadresse meiner Bestellung ändern.",
        "Können Sie mich morgen Nachmittag zurückrufen?",
        "Vielen Dank für Ihre Geduld, ein Mitarbeiter ist gleich für Sie da.",
        "Das Treffen wurde wegen des Regens abgesagt.",
        "Ich möchte mein Abonnement zum nächsten Monat kündigen.",
    ],
    "ja-JP": [
        "こんにちは、営業部の担当者と話したいです。",
        "注文の配送先住所を変更したいのですが。",
        "明日の午後に折り返し電話をいただけますか。",
        "お待たせして申し訳ありません。すぐに担当者におつなぎします。",
        "雨のため会議は中止になりました。",
        "来月から定期購読を解約したいです。",
    ],
    "ko-KR": [
        "안녕하세요, 영업부 담당자와 통화하고 싶습니다.",
        "주문한 상품의 배송 주소를 바꾸고 싶어요.",
        "내일 오후에 다시 전화해 주시겠어요?",
        "기다려 주셔서 감사합니다. 곧 상담원을 연결해 드리겠습니다.",
        "비 때문에 회의가 취소되었습니다.",
        "다음 달부터 구독을 해지하고 싶습니다.",
    ],
}


def normalize(text: str, language: str) -> str:
    """Case-folded, punctuation dropped; for ja/ko also every space (scored by character)."""
    kept = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text.casefold())
    if language.split("-")[0] in CHARACTER_SCORED:
        return "".join(kept.split())
    return " ".join(kept.split())


def character_error_rate(language: str, references: list[str], hypotheses: list[str]) -> float:
    """CER of `hypotheses` against `references`, normalized and with every space ignored."""
    squeeze = lambda text: "".join(normalize(text, language).split())  # noqa: E731
    return float(jiwer.cer([squeeze(r) for r in references], [squeeze(h) for h in hypotheses]))


def error_rate(language: str, references: list[str], hypotheses: list[str]) -> float:
    """WER, or CER for ja/ko, of `hypotheses` against `references` (normalized, see `normalize`)."""
    if language.split("-")[0] in CHARACTER_SCORED:
        return character_error_rate(language, references, hypotheses)
    return float(jiwer.wer([normalize(r, language) for r in references], [normalize(h, language) for h in hypotheses]))


def metric(language: str) -> str:
    return "CER" if language.split("-")[0] in CHARACTER_SCORED else "WER"


@dataclass
class RoundTrip:
    text: str
    heard: str
    engine: str
    first_chunk_s: float
    """/say -> first PCM chunk of the synthesizer (s)."""
    audio_s: float


async def speak(tts: Any, language: str, text: str) -> tuple[bytes, Any, float]:
    """(16 kHz PCM16, synthesizer, seconds to its first chunk) of `text` spoken in `language`."""
    synthesizer, tag = await asyncio.to_thread(tts.provider_for, language)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = 0.0
    chunks = []
    async for chunk in synthesizer.synthesize(text, language=tag):
        first = first or loop.time() - started
        chunks.append(chunk)
    return resample(b"".join(chunks), synthesizer.sample_rate, STT_RATE_HZ), synthesizer, first


async def hear(stt: Any, language: str, pcm16k: bytes) -> str:
    """What a stream opened in `language` hears in `pcm16k` (fed as 20 ms frames, 0.5 s of
    silence before and 1 s after), its final transcripts joined."""
    recognizer, tag = await asyncio.to_thread(stt.provider_for, language)
    stream = recognizer.open_stream(language=tag)
    silence = bytes(STT_RATE_HZ)  # 0.5 s of PCM16
    for frame in split_frames(silence + pcm16k + silence * 2, STT_RATE_HZ):
        stream.feed(frame)
    stream.close()
    return " ".join(e.text for e in [e async for e in stream.events()] if isinstance(e, FinalTranscript)).strip()


async def round_trip(tts: Any, stt: Any, language: str, text: str) -> RoundTrip:
    """Speak `text` in `language` with the TTS registry, hear it with the STT registry."""
    pcm, synthesizer, first = await speak(tts, language, text)
    heard = await hear(stt, language, pcm)
    return RoundTrip(text, heard, synthesizer.name, first, len(pcm) / 2 / STT_RATE_HZ)
