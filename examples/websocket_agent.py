"""The AI voice agent over the WebSocket (seed 001 recommends it for latency).

    python examples/websocket_agent.py --api http://127.0.0.1:8080 --token <JWT>

Subscribes to the customer's call, transcribe and speaking events and runs the agent loop
(agent/core.py). Reconnects with exponential backoff (1 s doubling, capped at 30 s) and
subscribes again, since subscriptions die with the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent.core import VoiceAgent, VoipbinClient  # noqa: E402
from agent.llm import make_responder  # noqa: E402


async def _handle(agent: VoiceAgent, message: dict) -> None:  # type: ignore[type-arg]
    try:
        await agent.handle(message["event_type"], message["data"])
    except Exception:
        logging.getLogger("agent").exception("event %s failed", message.get("event_type"))


async def run(agent: VoiceAgent, api: str, token: str, *, accesskey: bool = False,
              connected: asyncio.Event | None = None) -> None:
    """Forward every event to ``agent`` until cancelled; ``connected`` is set once subscribed."""
    customer_id = (await agent.client.get("/customer"))["id"]
    param = "accesskey" if accesskey else "token"
    url = api.replace("http", "ws", 1).rstrip("/") + f"/v1.0/ws?{param}={token}"
    topics = [f"customer_id:{customer_id}:{resource}:*" for resource in ("call", "transcribe", "speaking")]
    delay = 1.0
    tasks: set[asyncio.Task[None]] = set()
    while True:
        try:
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": topics}))
                delay = 1.0
                if connected is not None:
                    connected.set()
                async for raw in ws:
                    # each event in its own task: a handler waiting for a later event (the greeting waits
                    # for speaking_started) must not stop this reader
                    message = json.loads(raw)
                    task = asyncio.get_running_loop().create_task(_handle(agent, message))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except (OSError, websockets.ConnectionClosed) as exc:
            logging.getLogger("agent").warning("WebSocket lost (%s); reconnecting in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="JWT from POST /auth/login (or an accesskey with --accesskey)")
    parser.add_argument("--accesskey", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    agent = VoiceAgent(VoipbinClient(args.api, args.token, accesskey=args.accesskey), make_responder())
    asyncio.run(run(agent, args.api, args.token, accesskey=args.accesskey))


if __name__ == "__main__":
    main()
