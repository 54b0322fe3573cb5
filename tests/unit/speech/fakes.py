"""Local stand-ins for the cloud speech APIs, speaking their real wire formats.

Each fake is a Starlette app served by uvicorn on 127.0.0.1 (a socket bound before the
server starts, so clients can connect at once). They check what the real services check
(paths, auth headers, SigV4 signatures, body shapes) and answer in the real formats.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import socket
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

import numpy as np
import uvicorn
from botocore.eventstream import EventStreamBuffer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from voipbin.speech.eventstream import encode_message

API_KEY = "test-key-123"
AWS_ACCESS_KEY = "AKIDEXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AWS_REGION = "us-east-1"


def tone_pcm(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message}}, status_code=status)


# --- SigV4, written independently of botocore to check the adapters' signatures -------
def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_signature(
    *, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
    signed: list[str], payload_hash: str, amz_date: str, scope: str,
) -> str:  # fmt: skip
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    canonical = "\n".join(
        [method, quote(path, safe="/-_.~"), canonical_query, canonical_headers, ";".join(signed), payload_hash]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    date, region, service, _ = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + AWS_SECRET_KEY).encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Recorded:
    """What a fake server saw."""

    requests: list[dict] = field(default_factory=list)
    audio_bytes: int = 0
    closed_streams: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


# --- ElevenLabs ---------------------------------------------------------------------
def elevenlabs_app(rec: Recorded, *, chunks: int = 5, gate: asyncio.Event | None = None) -> Starlette:
    async def stream(request: Request) -> Response:
        if request.headers.get("xi-api-key") != API_KEY:
            return JSONResponse({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, status_code=401)
        if request.query_params.get("output_format") != "pcm_16000":
            return JSONResponse({"detail": {"message": "bad output_format"}}, status_code=422)
        body = await request.json()
        rec.requests.append({"voice_id": request.path_params["voice_id"], **body})
        pcm = tone_pcm(0.5)

        async def audio() -> AsyncIterator[bytes]:
            try:
                for i in range(chunks):
                    if i == 1 and gate is not None:
                        await gate.wait()  # hold the rest until the test says so
                    yield pcm[: len(pcm) - 1] if i == 0 else (pcm[-1:] + pcm[: len(pcm) - 1] if i == 1 else pcm)
            finally:
                rec.disconnected.set()

        return StreamingResponse(audio(), media_type="audio/pcm")

    return Starlette(routes=[Route("/v1/text-to-speech/{voice_id}/stream", stream, methods=["POST"])])


# --- Google Cloud TTS + STT ----------------------------------------------------------
def gcp_app(rec: Recorded, *, transcript: str = "hello world") -> Starlette:
    async def synthesize(request: Request) -> Response:
        if request.headers.get("x-goog-api-key") != API_KEY:
            return error(403, "The request is missing a valid API key.")
        body = await request.json()
        rec.requests.append(body)
        config = body["audioConfig"]
        if config["audioEncoding"] != "LINEAR16" or "text" not in body["input"]:
            return error(400, "bad request")
        wav = wav_bytes(tone_pcm(0.3, config["sampleRateHertz"]), config["sampleRateHertz"])
        return JSONResponse({"audioContent": base64.b64encode(wav).decode()})

    async def recognize(request: Request) -> Response:
        if request.headers.get("x-goog-api-key") != API_KEY:
            return error(403, "The request is missing a valid API key.")
        body = await request.json()
        audio = base64.b64decode(body["audio"]["content"])
        rec.requests.append({"config": body["config"], "audio_bytes": len(audio)})
        if body["config"]["encoding"] != "LINEAR16":
            return error(400, "bad encoding")
        return JSONResponse(
            {"results": [{"alternatives": [{"transcript": transcript, "confidence": 0.9}],
                          "resultEndTime": "1.500s", "languageCode": body["config"]["languageCode"].lower()}]}
        )  # fmt: skip

    return Starlette(
        routes=[
            Route("/v1/text:synthesize", synthesize, methods=["POST"]),
            Route("/v1/speech:recognize", recognize, methods=["POST"]),
        ]
    )


# --- AWS Polly + Transcribe streaming --------------------------------------------------
def _check_auth_header(request: Request, body: bytes) -> str | None:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "missing SigV4 Authorization"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    access, scope = parts["Credential"].split("/", 1)
    if access != AWS_ACCESS_KEY or not scope.endswith(f"/{AWS_REGION}/polly/aws4_request"):
        return "bad credential scope"
    signed = parts["SignedHeaders"].split(";")
    headers = {k.lower(): v for k, v in request.headers.items()}
    expected = sigv4_signature(
        method=request.method, path=request.url.path, query=parse_qsl(request.url.query),
        headers=headers, signed=signed, payload_hash=hashlib.sha256(body).hexdigest(),
        amz_date=headers["x-amz-date"], scope=scope,
    )  # fmt: skip
    return None if hmac.compare_digest(expected, parts["Signature"]) else "signature mismatch"


def aws_app(rec: Recorded, *, partials: tuple[str, ...] = ("hello", "hello world")) -> Starlette:
    async def speech(request: Request) -> Response:
        body = await request.body()
        problem = _check_auth_header(request, body)
        if problem:
            return JSONResponse({"message": problem}, status_code=403)
        params = json.loads(body)
        rec.requests.append(params)
        if params["OutputFormat"] != "pcm" or not params.get("VoiceId"):
            return JSONResponse({"message": "bad request"}, status_code=400)
        pcm = tone_pcm(0.4, int(params["SampleRate"]))
        return Response(pcm, media_type="audio/pcm")

    async def transcribe(ws: WebSocket) -> None:
        query = dict(parse_qsl(ws.url.query))
        scope = query.get("X-Amz-Credential", "").split("/", 1)[-1]
        expected = sigv4_signature(
            method="GET", path=ws.url.path,
            query=[(k, v) for k, v in parse_qsl(ws.url.query) if k != "X-Amz-Signature"],
            headers={"host": ws.headers["host"]}, signed=query.get("X-Amz-SignedHeaders", "").split(";"),
            payload_hash=hashlib.sha256(b"").hexdigest(), amz_date=query.get("X-Amz-Date", ""), scope=scope,
        )  # fmt: skip
        if not scope.endswith("/transcribe/aws4_request") or expected != query.get("X-Amz-Signature"):
            await ws.close(code=1008)
            return
        rec.requests.append(query)
        await ws.accept()
        buffer = EventStreamBuffer()
        sent_partials = 0

        async def send(result: dict) -> None:
            payload = json.dumps({"Transcript": {"Results": [result]}}).encode()
            await ws.send_bytes(
                encode_message({":event-type": "TranscriptEvent", ":content-type": "application/json",
                                ":message-type": "event"}, payload)
            )  # fmt: skip

        while True:
            buffer.add_data(await ws.receive_bytes())
            for message in buffer:
                assert message.headers[":event-type"] == "AudioEvent"
                if not message.payload:  # end of audio
                    await send({"ResultId": "r1", "StartTime": 0.1, "EndTime": 1.2, "IsPartial": False,
                                "Alternatives": [{"Transcript": partials[-1], "Items": []}]})  # fmt: skip
                    rec.closed_streams += 1
                    await ws.close()
                    return
                rec.audio_bytes += len(message.payload)
                if sent_partials < len(partials):
                    await send({"ResultId": "r1", "StartTime": 0.1, "EndTime": 0.5 + sent_partials,
                                "IsPartial": True,
                                "Alternatives": [{"Transcript": partials[sent_partials], "Items": []}]})  # fmt: skip
                    sent_partials += 1

    return Starlette(
        routes=[
            Route("/v1/speech", speech, methods=["POST"]),
            WebSocketRoute("/stream-transcription-websocket", transcribe),
        ]
    )


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1; yields its base URL (``http://127.0.0.1:PORT``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
