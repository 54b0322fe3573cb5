"""Local LLM servers speaking the providers' real streaming wire formats (OpenAI, Anthropic, Gemini).

Each is a Starlette app served by uvicorn on 127.0.0.1 (:func:`serve` in the test's loop,
:func:`serve_in_thread` for a client running elsewhere: a bench, a server process). An
:class:`LlmServer` holds the script (one :class:`Reply` per request, the last one repeating, or a
function of the request body) and records what it saw; an app takes one, or a function giving the
current one (a server kept running across tests, each test with its own script and record). The
apps check what the real services check (path, key header, API version, body shape, role order,
tool results naming a prior call) and answer 400 in the provider's error shape otherwise.

The SSE bytes go out the way real servers send them over TCP: the events of one instant are
joined and cut into pieces at arbitrary points (inside JSON, inside a line, inside a UTF-8
character), each piece a separate write about :data:`SPLIT_PAUSE_S` apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-test-0123456789"
SPLIT_PAUSE_S = 0.001
DEFAULT_TOKENS = ("Hello", "!", " How", " can", " I", " help", " you", " today", "?")


@dataclass
class Reply:
    """What the server answers to one request.

    ``tokens`` stream one per event, the first after ``first_token_delay_s``, the next ones
    ``token_interval_s`` apart; then ``tool_calls`` (``(name, arguments)``). ``status`` other than
    200 answers that HTTP error at once (``retry_after`` in seconds as the provider expresses it).
    ``error_after_tokens`` sends an error event after that many tokens and ends the stream;
    ``drop_after_tokens`` ends the body after that many tokens without the stream's last event.
    """

    tokens: Sequence[str] = DEFAULT_TOKENS
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()
    usage: tuple[int, int] = (42, 9)
    first_token_delay_s: float = 0.0
    token_interval_s: float = 0.0
    status: int = 200
    retry_after: float | None = None
    error_after_tokens: int | None = None
    drop_after_tokens: int | None = None
    message: str = ""



def per_turn(*replies: Reply) -> Callable[[dict[str, Any]], Reply]:
    """``LlmServer.replies`` by turn of the conversation, as a model answers the same conversation the
    same way: a request is keyed by how many user and tool messages it carries, and each new key gets
    the next of ``replies`` (the last one repeats). So a preemptive reply ai_talk discarded (started on
    the caller's pause, voided by more speech) and the request it makes once the turn ends get the same
    answer, and a retried request too."""
    seen: dict[tuple[int, int], Reply] = {}

    def pick(body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        key = (sum(m.get("role") == "user" for m in messages), sum(m.get("role") == "tool" for m in messages))
        if key not in seen:
            seen[key] = replies[min(len(seen), len(replies) - 1)]
        return seen[key]

    return pick

@dataclass
class LlmServer:
    """The script and the record of one fake provider.

    ``requests`` are the JSON bodies received (valid or not), ``arrivals`` their ``time.monotonic()``,
    ``headers`` their headers; ``tokens_sent`` counts text events written; ``disconnected`` is set
    when a client went away before the end of its stream.
    """

    replies: Sequence[Reply] | Callable[[dict[str, Any]], Reply] = (Reply(),)
    api_key: str = API_KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    tokens_sent: int = 0
    completed: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        if callable(self.replies):
            return self.replies(body)
        return self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]

    async def record(self, request: Request) -> dict[str, Any]:
        self.arrivals.append(time.monotonic())
        self.headers.append(dict(request.headers))
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self.requests.append(body if isinstance(body, dict) else {})
        return self.requests[-1]

    def reject(self, problem: str) -> str:
        self.rejected.append(problem)
        return problem


Burst = list[bytes]  # SSE events sent at the same instant


async def _timed(server: LlmServer, bursts: Iterator[tuple[float, Burst, int]]) -> AsyncIterator[bytes]:
    """The bytes of ``bursts`` (delay before it, its events, text events in it) as split TCP writes."""
    done = False
    try:
        for delay, burst, tokens in bursts:
            if delay:
                await asyncio.sleep(delay)
            data = b"".join(burst)
            cuts = {len(data) // 3, 2 * len(data) // 3}
            multibyte = next((i for i, b in enumerate(data) if b >= 0x80), None)
            if multibyte is not None:
                cuts.add(multibyte + 1)  # inside a UTF-8 character
            start = 0
            for cut in sorted(c for c in cuts if 0 < c < len(data)):
                yield data[start:cut]
                start = cut
                await asyncio.sleep(SPLIT_PAUSE_S)
            yield data[start:]
            server.tokens_sent += tokens
        done = True
    finally:
        if done:
            server.completed += 1
        else:
            server.disconnected.set()


def _token_bursts(reply: Reply, event: Callable[[int, str], Burst], head: Burst) -> Iterator[tuple[float, Burst, int]]:
    """(delay, events, text events) of the text part of ``reply``; ``head`` goes with the first token."""
    limit = min([len(reply.tokens), *(n for n in (reply.error_after_tokens, reply.drop_after_tokens) if n is not None)])
    for i, token in enumerate(reply.tokens[:limit]):
        delay = reply.first_token_delay_s if i == 0 else reply.token_interval_s
        yield delay, (head if i == 0 else []) + event(i, token), 1
    if limit == 0:
        yield reply.first_token_delay_s, head, 0


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _pieces(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


# --- OpenAI Chat Completions ------------------------------------------------------------------
def openai_app(source: LlmServer | Callable[[], LlmServer]) -> Starlette:
    """``POST /v1/chat/completions`` (base URL ``{url}/v1``), streaming ``chat.completion.chunk``s."""

    def error(status: int, message: str, kind: str, code: str | None = None, headers: dict | None = None) -> Response:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return JSONResponse(body, status_code=status, headers=headers)

    def problem(body: dict[str, Any]) -> str | None:
        if not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
            return "model and messages are required"
        if body.get("stream") is not True or body.get("stream_options") != {"include_usage": True}:
            return "expected stream: true with stream_options.include_usage"
        called: set[str] = set()
        for message in body["messages"]:
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                return f"bad role {message.get('role')!r}"
            for call in message.get("tool_calls") or ():
                if call.get("type") != "function" or not isinstance(call["function"].get("arguments"), str):
                    return "tool_calls[].function.arguments must be a JSON string"
                called.add(call["id"])
            if message["role"] == "tool" and message.get("tool_call_id") not in called:
                return "tool message without a preceding tool_calls id"
        for tool in body.get("tools") or ():
            if tool.get("type") != "function" or "name" not in tool.get("function", {}):
                return "tools[] must be {type: function, function: {name, ...}}"
        return None

    async def completions(request: Request) -> Response:
        server = source() if callable(source) else source  # the script this request plays
        body = await server.record(request)
        if request.headers.get("authorization") != f"Bearer {server.api_key}":
            return error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if bad := problem(body):
            return error(400, server.reject(bad), "invalid_request_error")
        reply = server.next_reply(body)
        if reply.status == 429:
            headers = {} if reply.retry_after is None else {"retry-after": str(max(1, round(reply.retry_after))),
                                                            "retry-after-ms": str(int(reply.retry_after * 1000))}
            return error(429, reply.message or "Rate limit reached for requests", "requests", "rate_limit_exceeded",
                         headers)
        if reply.status != 200:
            return error(reply.status, reply.message or "The server had an error", "server_error")
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body["model"], "system_fingerprint": "fp_test"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> Burst:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return [f"data: {_json({**base, 'choices': [choice]})}\n\n".encode()]

        def bursts() -> Iterator[tuple[float, Burst, int]]:
            head = [b": keep-alive\n\n", *chunk({"role": "assistant", "content": ""})]
            yield from _token_bursts(reply, lambda i, t: chunk({"content": t}), head)
            if reply.drop_after_tokens is not None:
                return
            if reply.error_after_tokens is not None:
                failure = {"error": {"message": reply.message or "The server had an error", "type": "server_error"}}
                yield 0.0, [f"data: {_json(failure)}\n\n".encode()], 0
                return
            for i, (name, arguments) in enumerate(reply.tool_calls):  # arguments stream like tokens
                yield reply.token_interval_s, chunk({"tool_calls": [{
                    "index": i, "id": f"call_{uuid.uuid4().hex[:16]}", "type": "function",
                    "function": {"name": name, "arguments": ""}}]}), 0
                for piece in _pieces(_json(arguments)):
                    delta = {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                    yield reply.token_interval_s, chunk(delta), 0
            tail = chunk({}, "tool_calls" if reply.tool_calls else "stop")
            usage = {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                     "total_tokens": sum(reply.usage)}
            tail.append(f"data: {_json({**base, 'choices': [], 'usage': usage})}\n\n".encode())
            yield reply.token_interval_s, [*tail, b"data: [DONE]\n\n"], 0

        return StreamingResponse(_timed(server, bursts()), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


# --- Anthropic Messages -----------------------------------------------------------------------
def anthropic_app(source: LlmServer | Callable[[], LlmServer]) -> Starlette:
    """``POST /v1/messages`` (base URL ``{url}``), streaming named Messages API events."""

    def error(status: int, kind: str, message: str, headers: dict | None = None) -> Response:
        return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status,
                            headers=headers)

    def problem(body: dict[str, Any]) -> str | None:
        if not body.get("model") or not isinstance(body.get("max_tokens"), int) or body.get("stream") is not True:
            return "model, max_tokens and stream: true are required"
        messages = body.get("messages") or []
        if not messages or messages[0].get("role") != "user":
            return "messages: first message must use the \"user\" role"
        previous: list[dict[str, Any]] = []
        for message in messages:
            if message.get("role") not in ("user", "assistant"):
                return f"messages: Unexpected role {message.get('role')!r}"
            blocks = message["content"] if isinstance(message["content"], list) else [{"type": "text", "text": "x"}]
            uses = {b["id"] for b in previous if b.get("type") == "tool_use"}
            for block in blocks:
                if block.get("type") == "text" and not block.get("text"):
                    return "messages: text content blocks must be non-empty"
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in uses:
                    return "messages: tool_result block(s) without a corresponding tool_use in the previous message"
            previous = blocks
        for tool in body.get("tools") or ():
            if set(tool) - {"name", "description", "input_schema"} or "input_schema" not in tool:
                return "tools: expected {name, description, input_schema}"
        return None

    async def messages(request: Request) -> Response:
        server = source() if callable(source) else source  # the script this request plays
        body = await server.record(request)
        if request.headers.get("x-api-key") != server.api_key:
            return error(401, "authentication_error", "invalid x-api-key")
        if request.headers.get("anthropic-version") != "2023-06-01":
            return error(400, "invalid_request_error", server.reject("anthropic-version header is required"))
        if bad := problem(body):
            return error(400, "invalid_request_error", server.reject(bad))
        reply = server.next_reply(body)
        if reply.status == 429:
            headers = {} if reply.retry_after is None else {"retry-after": str(max(0, round(reply.retry_after)))}
            return error(429, "rate_limit_error", reply.message or "Number of request tokens has exceeded your "
                                                                    "per-minute rate limit", headers)
        if reply.status != 200:
            return error(reply.status, "api_error", reply.message or "Internal server error")

        def event(name: str, data: dict[str, Any]) -> Burst:
            return [f"event: {name}\ndata: {_json({'type': name, **data})}\n\n".encode()]

        def bursts() -> Iterator[tuple[float, Burst, int]]:
            message = {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant", "content": [],
                       "model": body["model"], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": reply.usage[0], "output_tokens": 1}}
            head = event("message_start", {"message": message}) + event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}) + event("ping", {})
            yield from _token_bursts(
                reply, lambda i, t: event("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                                         "text": t}}), head)
            if reply.drop_after_tokens is not None:
                return
            if reply.error_after_tokens is not None:
                yield 0.0, event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}), 0
                return
            tail = event("content_block_stop", {"index": 0})
            for i, (name, arguments) in enumerate(reply.tool_calls, start=1):  # arguments stream like tokens
                yield reply.token_interval_s, tail + event("content_block_start", {"index": i, "content_block": {
                    "type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name, "input": {}}}), 0
                for piece in ["", *_pieces(_json(arguments))]:
                    yield reply.token_interval_s, event("content_block_delta", {
                        "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}}), 0
                tail = event("content_block_stop", {"index": i})
            stop = "tool_use" if reply.tool_calls else "end_turn"
            tail += event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                            "usage": {"output_tokens": reply.usage[1]}})
            yield reply.token_interval_s, tail + event("message_stop", {}), 0

        return StreamingResponse(_timed(server, bursts()), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


# --- Gemini streamGenerateContent -------------------------------------------------------------
def gemini_app(source: LlmServer | Callable[[], LlmServer]) -> Starlette:
    """``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (base URL ``{url}``)."""

    def error(status: int, state: str, message: str, details: Sequence[dict[str, Any]] = ()) -> Response:
        body = {"error": {"code": status, "message": message, "status": state, "details": list(details)}}
        return JSONResponse(body, status_code=status)

    def problem(body: dict[str, Any]) -> str | None:
        contents = body.get("contents") or []
        if not contents or contents[0].get("role") != "user":
            return "Please ensure that the first content has role user"
        called: set[str] = set()
        for content in contents:
            if content.get("role") not in ("user", "model") or not content.get("parts"):
                return "contents[].role must be user or model, with parts"
            for part in content["parts"]:
                if "functionCall" in part:
                    called.add(part["functionCall"]["name"])
                if "functionResponse" in part and part["functionResponse"].get("name") not in called:
                    return "functionResponse names no previous functionCall"
                if "functionResponse" in part and not isinstance(part["functionResponse"].get("response"), dict):
                    return "functionResponse.response must be an object"
        for tool in body.get("tools") or ():
            for declaration in tool.get("functionDeclarations") or ():
                parameters = declaration.get("parameters")
                if parameters is not None and parameters.get("type") == "object" and not parameters.get("properties"):
                    return "parameters.properties: should be non-empty for OBJECT type"
        return None

    async def generate(request: Request) -> Response:
        server = source() if callable(source) else source  # the script this request plays
        body = await server.record(request)
        model, _, method = request.path_params["target"].partition(":")
        if method != "streamGenerateContent" or request.query_params.get("alt") != "sse":
            return error(404, "NOT_FOUND", server.reject("expected :streamGenerateContent?alt=sse"))
        if request.headers.get("x-goog-api-key") != server.api_key:
            return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}])
        if bad := problem(body):
            return error(400, "INVALID_ARGUMENT", server.reject(bad))
        reply = server.next_reply(body)
        if reply.status == 429:
            details = [] if reply.retry_after is None else [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{reply.retry_after:g}s"}]
            return error(429, "RESOURCE_EXHAUSTED", reply.message or "You exceeded your current quota", details)
        if reply.status != 200:
            return error(reply.status, "INTERNAL", reply.message or "An internal error has occurred.")
        count = [0]

        def chunk(parts: list[dict[str, Any]], finish: str | None = None) -> Burst:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            count[0] += bool(parts)
            usage = {"promptTokenCount": reply.usage[0],
                     "candidatesTokenCount": reply.usage[1] if finish else count[0],
                     "totalTokenCount": reply.usage[0] + (reply.usage[1] if finish else count[0])}
            data = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
            return [f"data: {_json(data)}\r\n\r\n".encode()]

        def bursts() -> Iterator[tuple[float, Burst, int]]:
            yield from _token_bursts(reply, lambda i, t: chunk([{"text": t}]), [])
            if reply.drop_after_tokens is not None:
                return
            if reply.error_after_tokens is not None:
                failure = {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
                yield 0.0, [f"data: {_json(failure)}\r\n\r\n".encode()], 0
                return
            calls = [{"functionCall": {"name": name, "args": arguments}} for name, arguments in reply.tool_calls]
            yield reply.token_interval_s, chunk(calls, "STOP"), 0

        return StreamingResponse(_timed(server, bursts()), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1beta/models/{target:path}", generate, methods=["POST"])])


# --- serving ---------------------------------------------------------------------------------
def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 in this loop; yields ``http://127.0.0.1:PORT`` (connectable at once)."""
    sock = _listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def serve_in_thread(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 from a thread with its own loop; yields the base URL."""
    sock = _listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True,
                              name="llm-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
