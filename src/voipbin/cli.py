"""The ``voipbin`` command: serve, sandbox, migrate."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any, Literal

import structlog

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel

from voipbin.auth.jwt_secret import INSECURE_DEFAULT_JWT_SECRET, WeakSecret, load_or_create_secret, require_strong_secret
from voipbin.config import Settings
from voipbin.events.websocket_hub import UVICORN_WS_OPTIONS
from voipbin.logging import configure_logging
from voipbin.numbers.pool import SANDBOX_NUMBER_POOL
from voipbin.store.db import secure_sqlite_file
from voipbin.shutdown import DrainingServer, install_drain
from voipbin.store.migrate import upgrade

log = structlog.get_logger(__name__)
Role = Literal["all", "api", "media", "worker", "speech"]
app = typer.Typer(help="Self-hostable, VoIPBIN-compatible programmable voice platform.", no_args_is_help=True)
console = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    settings = Settings()
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


class _NoHttp:
    """Stands in for the HTTP server on a pod that serves none (roles ``media`` and ``worker``):
    :func:`install_drain` sets ``should_exit`` after draining, which ends ``serve``."""

    force_exit = False

    def __init__(self) -> None:
        self._exit = asyncio.Event()

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()

    async def serve(self) -> None:
        await self._exit.wait()


async def _run_server(settings: Settings, *, sandbox: bool) -> None:
    from voipbin.api.app import create_app
    from voipbin.runtime import Runtime
    from voipbin.sandbox.banner import banner_lines
    from voipbin.sandbox.tls import https_config, serve_together

    runtime = Runtime(settings)
    await runtime.start()
    warm = asyncio.get_running_loop().create_task(runtime.warm_up())
    try:
        if sandbox:
            seed = await runtime.seed_sandbox()
            base = settings.base_url
            console.print(Panel.fit(
                f"API          {base}/v1.0   (docs {base}/docs, spec {base}/openapi.json)\n"
                f"WebSocket    {base.replace('http', 'ws', 1)}/v1.0/ws?token=<token>\n"
                f"SIP          {settings.sip_host}:{runtime.sip.port} (UDP+TCP), "
                f"registrar domain {seed.customer_id}.registrar.{settings.sip_domain}\n"
                f"Login        {seed.username} / {seed.password}   (POST {base}/auth/login)\n"
                f"Customer id  {seed.customer_id}\n"
                f"Number       {seed.number}\n" + "\n".join(await asyncio.to_thread(banner_lines, settings, runtime)),
                title="voipbin sandbox", border_style="green"))
        servers: list[Any] = [_NoHttp()]
        if settings.role in ("all", "api"):  # media and worker pods serve no HTTP: commands reach them on the bus
            app = await asyncio.to_thread(create_app, runtime)  # importing and building the routers is CPU: off the loop
            config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port,
                                    loop="uvloop", http="httptools", log_config=None, access_log=False,
                                    lifespan="on", timeout_graceful_shutdown=2, **UVICORN_WS_OPTIONS)
            servers = [DrainingServer(config)]
            https = https_config(config, settings.https_port, settings.data_dir()) if settings.https_port else None
            if https is not None:  # the sandbox's https://api.voipbin.test:8443 (seed 003)
                servers.append(DrainingServer(https))
        log.info("pod started", pod_id=settings.pod_id, role=settings.role,
                 sip=f"{settings.sip_host}:{runtime.sip.port}" if runtime.has_media else "")
        install_drain(runtime, servers)  # SIGTERM: drain (BYE every call, flush webhooks), then exit 0
        await serve_together(servers)
    finally:
        warm.cancel()
        await runtime.stop()


def _run(settings: Settings, *, sandbox: bool) -> None:
    import uvloop

    configure_logging(settings.log_format, settings.log_level)
    secure_sqlite_file(settings.database_url)  # data dir 0700, database 0600, before the migration creates it
    upgrade(settings.database_url)
    uvloop.run(_run_server(settings, sandbox=sandbox))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="API listen address (VOIPBIN_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="API port (VOIPBIN_API_PORT)")] = None,
    role: Annotated[Role | None, typer.Option(help="What this process runs (VOIPBIN_ROLE): all (default), "
                                                   "api, media, worker or speech")] = None,
) -> None:
    """Production entry point: migrate, then serve; nothing is pre-seeded.

    ``--role all`` serves everything (API, SIP, media, webhooks) in one process. Scale-out runs any
    number of ``api`` (REST + WebSocket), ``media`` (SIP, RTP, speech; no HTTP) and ``worker``
    (webhook delivery, ending what dead pods held; no HTTP) processes on one PostgreSQL
    (VOIPBIN_DATABASE_URL) and one NATS (VOIPBIN_BUS_URL), each with its own VOIPBIN_POD_ID; ``speech``
    pods (no HTTP, no SIP) run whisper and piper/kokoro for media pods set VOIPBIN_SPEECH_REMOTE=nats.
    Refuses to start (exit 2) unless VOIPBIN_JWT_SECRET is a non-default secret of at least 32 bytes,
    or when a role other than ``all`` is asked on SQLite or the in-process bus.
    """
    settings = _settings(api_host=host, api_port=port, role=role)
    shared = settings.sqlite_path() is None and settings.bus_url.startswith(("nats://", "tls://"))
    if settings.role != "all" and not shared:
        typer.echo(f"voipbin serve: --role {settings.role} needs a shared store and bus: set VOIPBIN_DATABASE_URL "
                   "to PostgreSQL and VOIPBIN_BUS_URL to nats://host:port", err=True)
        raise typer.Exit(2)
    try:
        require_strong_secret(settings.jwt_secret)
    except WeakSecret as exc:
        typer.echo(f"voipbin serve: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.number_pool is None:  # customers claim only what the operator lists in VOIPBIN_NUMBER_POOL
        settings = settings.model_copy(update={"number_pool": ""})
    _run(settings, sandbox=False)


@app.command()
def sandbox(
    host: Annotated[str | None, typer.Option(help="API listen address")] = None,
    port: Annotated[int | None, typer.Option(help="API port")] = None,
) -> None:
    """Everything in one process on 127.0.0.1 with the admin@localhost account and one owned number."""
    os.environ.setdefault("VOIPBIN_WEBHOOK_ALLOW_PRIVATE", "true")
    os.environ.setdefault("VOIPBIN_SPEECH_OFFLINE_FALLBACK", "true")  # cloud providers without keys: local engines
    os.environ.setdefault("VOIPBIN_SANDBOX_VIRTUAL_PSTN", "true")  # tel destinations without a trunk: a virtual phone
    os.environ.setdefault("VOIPBIN_HTTPS_PORT", "8443")  # https://api.voipbin.test:8443 with a self-signed certificate
    os.environ.setdefault("VOIPBIN_SIP_ALLOW_PRIVATE", "true")  # sip: destinations on loopback/LAN phones
    settings = _settings(api_host=host, api_port=port, role="all")  # one process, whatever VOIPBIN_ROLE says
    if settings.jwt_secret == INSECURE_DEFAULT_JWT_SECRET:  # a random secret kept per data dir
        settings = settings.model_copy(update={"jwt_secret": load_or_create_secret(settings.data_dir())})
    if settings.number_pool is None:
        settings = settings.model_copy(update={"number_pool": SANDBOX_NUMBER_POOL})
    _run(settings, sandbox=True)


@app.command()
def migrate() -> None:
    """Bring the database at VOIPBIN_DATABASE_URL to the newest schema."""
    settings = Settings()
    secure_sqlite_file(settings.database_url)
    upgrade(settings.database_url)
    console.print(f"database at {settings.database_url} is up to date")




@app.command()
def demo(
    workdir: Annotated[str | None, typer.Option(help="Keep the demo's files (database, recordings) here")] = None,
) -> None:
    """The seeds' Real-Time Voice Interaction scenario end to end, with a real softphone and real speech.

    Exits 0 only when every step happened; otherwise names the step that failed.
    """
    import uvloop

    from voipbin.demo.scenario import run_demo

    configure_logging("console", "WARNING")
    path = None
    if workdir:
        from pathlib import Path

        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
    out = Console()
    raise typer.Exit(uvloop.run(run_demo(out, path)))


if __name__ == "__main__":  # python -m voipbin.cli
    app()
