"""The AI voice agent as a webhook server (seed 002's tutorial, on Starlette instead of Flask).

    python examples/webhook_agent.py --api http://127.0.0.1:8080 --token <JWT> --port 9000

Registers ``http://<host>:<port>/webhook`` as the customer's webhook (``PUT /v1.0/customer``), checks
every delivery's ``X-VoIPBIN-Signature`` with the customer's ``webhook_secret`` (a new one, from
``POST /v1.0/customer/webhook_secret/rotate``: the only response that shows it), answers 200 at
once and runs the agent loop (agent/core.py) in the background. Deliveries are retried by the
platform, so the agent ignores a ``call_progressing`` it has already handled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent.core import VoiceAgent, VoipbinClient  # noqa: E402
from agent.llm import make_responder  # noqa: E402
from voipbin.events.signature import verify  # noqa: E402


def create_app(agent: VoiceAgent, webhook_secret: str) -> Starlette:
    tasks: set[asyncio.Task[None]] = set()
    seen: set[str] = set()

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify(webhook_secret, body, request.headers.get("x-voipbin-signature", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        event_id = request.headers.get("x-voipbin-event-id", "")
        if event_id in seen:  # an at-least-once retry of something already handled
            return JSONResponse({"status": "duplicate"})
        seen.add(event_id)
        payload = json.loads(body)
        task = asyncio.get_running_loop().create_task(agent.handle(payload["type"], payload["data"]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])


async def register_webhook(agent: VoiceAgent, public_url: str) -> str:
    """Point the customer's webhook at us; returns the ``webhook_secret`` to verify deliveries with
    (rotated: ``GET /customer`` does not show it, so a secret from an earlier run is replaced)."""
    r = await agent.client.http.put("/customer", params=agent.client.params,
                                    json={"webhook_method": "POST", "webhook_uri": public_url})
    r.raise_for_status()
    return str((await agent.client.post("/customer/webhook_secret/rotate"))["webhook_secret"])


async def serve(agent: VoiceAgent, host: str, port: int, public_url: str) -> None:
    secret = await register_webhook(agent, public_url)
    server = uvicorn.Server(uvicorn.Config(create_app(agent, secret), host=host, port=port, log_level="warning"))
    await server.serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--public-url", default="", help="URL the platform posts to (default http://host:port/webhook)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    agent = VoiceAgent(VoipbinClient(args.api, args.token), make_responder())
    asyncio.run(serve(agent, args.host, args.port, args.public_url or f"http://{args.host}:{args.port}/webhook"))


if __name__ == "__main__":
    main()
