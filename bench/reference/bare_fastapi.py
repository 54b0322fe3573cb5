"""Reference for ``bench/api_throughput.py``: a bare FastAPI app serving one JSON body.

The same route shape as ``GET /v1.0/extensions/{id}`` and the same server settings as ``voipbin sandbox``
(uvicorn, 1 worker, uvloop, httptools, no access log), returning the JSON object read from ``--body``
through ``JSONResponse`` (so the response bytes equal the sandbox's). No middleware, no dependencies, no
authentication: the floor the framework itself sets on this machine.

    .venv/bin/python bench/reference/bare_fastapi.py --port 8099 --body body.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse


def create_app(body: dict[str, Any]) -> FastAPI:
    """An app answering ``GET /v1.0/extensions/{extension_id}`` with ``body`` (any query string is ignored)."""
    app = FastAPI()

    @app.get("/v1.0/extensions/{extension_id}")
    async def get(extension_id: str) -> JSONResponse:
        return JSONResponse(body)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True, help="file holding the JSON object to return")
    args = parser.parse_args()
    app = create_app(json.loads(args.body.read_text()))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", workers=1,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
