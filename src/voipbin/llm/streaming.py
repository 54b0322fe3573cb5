"""What every HTTP+SSE chat model shares: the request, retries, timeouts, cancellation, error mapping.

:class:`SseChatModel` sends one POST whose answer is a ``text/event-stream`` (the SSE framing of
the WHATWG HTML Living Standard, section 9.2, parsed by ``httpx-sse``) and leaves the rest to a
provider subclass: the request body, the decoding of the events, the error body.

- Retries: a 429 before the first event is retried up to ``max_retries`` times, waiting what the
  provider asked (``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date, RFC 9110
  section 10.2.3) or a jittered exponential backoff, never past the first-event deadline; then
  :class:`LlmError` ``RATE_LIMITED`` with ``retry_after_s``. Nothing is retried once an event was
  given to the caller.
- Timeouts: the model's first output must come within ``first_token_timeout_s`` of the first
  ``anext`` (connecting and retries included; a tool call's first delta counts although its event
  waits for the last one), the last event within ``timeout_s``; either -> ``TIMEOUT``, raised only
  while waiting for the provider, never inside the caller's own code between events.
- Cancellation: cancelling the consuming task or closing the iterator closes the response, which
  drops the connection (an unfinished HTTP/1.1 body cannot be reused), so the provider stops at once.
- Keep-alive: a reply read to its last event has the rest of its body (what follows ``[DONE]`` or
  ``message_stop``: the chunked body's end) read too, for up to ``DRAIN_S``, so the connection goes
  back to the client's pool and the next turn skips the TCP (and TLS) handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import structlog
from httpx_sse import EventSource, ServerSentEvent, SSEError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from voipbin.llm.base import ChatMessage, LlmError, LlmErrorKind, StreamEvent, ToolSpec

log = structlog.get_logger(__name__)

DEFAULT_FIRST_TOKEN_TIMEOUT_S = 10.0
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 2
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 4.0
ERROR_BODY_MAX_CHARS = 500
#: how long the end of a body is awaited after the reply's last event, to keep the connection (seconds)
DRAIN_S = 0.2


class Progress:
    """What a decoder yields when the model's output began but no event is complete (a tool call's first delta)."""


PROGRESS = Progress()


def kind_for_status(status: int) -> LlmErrorKind:
    """The error kind of an HTTP status: 401/403 auth, 408 timeout, 429 rate limited, 4xx bad request, else server."""
    if status in (401, 403):
        return LlmErrorKind.AUTH
    if status == 408:
        return LlmErrorKind.TIMEOUT
    if status == 429:
        return LlmErrorKind.RATE_LIMITED
    if 400 <= status < 500:
        return LlmErrorKind.BAD_REQUEST
    return LlmErrorKind.SERVER


def retry_after_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``retry-after`` (seconds or HTTP date); None if absent.

    ``now`` is the Unix time an HTTP date is measured from (default: the wall clock). Never negative.
    """
    millis = headers.get("retry-after-ms")
    with contextlib.suppress(ValueError, TypeError):
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(body: bytes | str) -> str:
    """The provider's own message from an error body (``{"error": {"message"}}`` or ``{"error": "..."}``)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text[:ERROR_BODY_MAX_CHARS]
    detail = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)[:ERROR_BODY_MAX_CHARS]
    return str(detail)[:ERROR_BODY_MAX_CHARS]


def parse_json_object(provider: str, what: str, text: str) -> dict[str, Any]:
    """``text`` decoded as a JSON object (``""`` -> ``{}``); else :class:`LlmError` ``SERVER`` naming ``what``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LlmError(LlmErrorKind.SERVER, provider, f"{what} is not valid JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise LlmError(LlmErrorKind.SERVER, provider, f"{what} is not a JSON object: {text[:200]!r}")
    return value


async def _drain(events: AsyncIterator[ServerSentEvent]) -> None:
    """Read what is left of a body whose reply is complete (its end, normally at once), for up to
    :data:`DRAIN_S`: a body read to its end leaves the connection reusable; else it is dropped."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError, SSEError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in events:
                pass


class SseChatModel(ABC):
    """A :class:`~voipbin.llm.base.ChatModel` over one streaming HTTP POST (see the module docstring).

    ``http_client`` may be shared between models (the caller then closes it); otherwise the model
    owns one (keep-alive: later turns skip the TCP/TLS handshake) and :meth:`aclose` closes it.
    """

    provider: str = ""

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None,
                 first_token_timeout_s: float = DEFAULT_FIRST_TOKEN_TIMEOUT_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES, http_client: httpx.AsyncClient | None = None) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.first_token_timeout_s = first_token_timeout_s
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._owns_client = http_client is None
        # Deadlines are enforced around each wait in stream(); httpx's own timeouts stay off.
        self._client = http_client or httpx.AsyncClient(timeout=None)

    async def aclose(self) -> None:
        """Close the connections (only those of a client the model created)."""
        if self._owns_client:
            await self._client.aclose()

    @abstractmethod
    def _request(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], temperature: float | None,
                 max_tokens: int | None) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(URL, headers, JSON body) of the streaming request."""

    @abstractmethod
    def _decode(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[StreamEvent | Progress]:
        """The stream events of the provider's SSE events (and :data:`PROGRESS`); :class:`LlmError` on an error event."""

    def _error(self, status: int, headers: Mapping[str, str], body: bytes) -> LlmError:
        """The error of a non-2xx answer (providers refine the kind from their error body)."""
        return LlmError(kind_for_status(status), self.provider, f"HTTP {status}: {error_message(body)}",
                        status=status, retry_after_s=retry_after_s(headers))

    async def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = (),
                     temperature: float | None = None, max_tokens: int | None = None) -> AsyncIterator[StreamEvent]:
        """One reply to ``messages`` as events (see :class:`~voipbin.llm.base.ChatModel`)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout_s
        first_deadline = min(loop.time() + self.first_token_timeout_s, end)
        url, headers, body = self._request(messages, tools, temperature, max_tokens)
        request = self._client.build_request("POST", url, headers={
            "accept": "text/event-stream", "cache-control": "no-store", **headers}, json=body)
        events = self._events(request, first_deadline)
        async with contextlib.aclosing(events):
            deadline, what = first_deadline, f"no first token within {self.first_token_timeout_s:g} s"
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise LlmError(LlmErrorKind.TIMEOUT, self.provider, f"{self.model}: {what}") from None
                deadline, what = end, f"reply not finished within {self.timeout_s:g} s"
                if event is not PROGRESS:
                    yield event

    async def _events(self, request: httpx.Request, first_deadline: float) -> AsyncIterator[StreamEvent | Progress]:
        response = await self._open(request, first_deadline)
        try:
            async with contextlib.aclosing(EventSource(response).aiter_sse()) as sse:
                async with contextlib.aclosing(self._decode(sse)) as decoded:
                    async for event in decoded:
                        yield event
                await _drain(sse)
        except SSEError as exc:
            raise LlmError(LlmErrorKind.SERVER, self.provider, f"not an event stream: {exc}") from exc
        except httpx.TransportError as exc:
            raise LlmError(LlmErrorKind.UNAVAILABLE, self.provider, f"connection lost mid-stream: {exc!r}") from exc
        finally:
            await response.aclose()

    async def _open(self, request: httpx.Request, first_deadline: float) -> httpx.Response:
        """The 2xx streaming response, after the bounded retries of 429s."""
        loop = asyncio.get_running_loop()
        backoff = wait_random_exponential(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            asked = exc.retry_after_s if isinstance(exc, LlmError) else None
            return backoff(state) if asked is None else asked

        def past_deadline(state: RetryCallState) -> bool:
            return loop.time() + (state.upcoming_sleep or 0.0) >= first_deadline

        def before_sleep(state: RetryCallState) -> None:
            log.info("llm rate limited, retrying", provider=self.provider, model=self.model,
                     attempt=state.attempt_number, wait_s=round(state.upcoming_sleep, 3))

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, LlmError) and e.kind is LlmErrorKind.RATE_LIMITED),
            stop=stop_after_attempt(self.max_retries + 1) | past_deadline, wait=wait, sleep=asyncio.sleep,
            before_sleep=before_sleep, reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self._send(request)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise LlmError(LlmErrorKind.UNAVAILABLE, self.provider, f"cannot reach {request.url}: {exc!r}") from exc
        if response.is_success:
            return response
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        raise self._error(response.status_code, response.headers, body)
