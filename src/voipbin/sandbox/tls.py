"""The sandbox's HTTPS endpoint: a self-signed certificate for ``api.voipbin.test`` (seed 003).

Seed 003 tells sandbox users to call ``https://api.voipbin.test:8443`` with ``curl -k``. On first
start `ensure_certificate` makes an ECDSA P-256 key and a self-signed X.509 certificate (RFC 5280)
whose subjectAltName lists ``api.voipbin.test``, ``localhost`` and ``127.0.0.1``, with the
``cryptography`` library, and keeps both in the data dir (key mode 0600); later starts reuse them
until 30 days before they expire. `serve_together` runs the HTTP and HTTPS servers in one loop.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = structlog.get_logger(__name__)

HOSTS = ("api.voipbin.test", "localhost", "127.0.0.1")
CERT_FILE = "sandbox-tls.crt"
KEY_FILE = "sandbox-tls.key"
VALIDITY_DAYS = 825
RENEW_BEFORE_DAYS = 30


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _usable(cert_path: Path, hosts: Sequence[str]) -> bool:
    """Whether the stored certificate covers ``hosts`` and is not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    now = datetime.datetime.now(datetime.UTC)
    fresh = cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_BEFORE_DAYS)
    return fresh and all(name in san for name in _alt_names(hosts))


def ensure_certificate(directory: Path, hosts: Sequence[str] = HOSTS) -> tuple[Path, Path]:
    """``(certificate, key)`` PEM paths in ``directory``, made on first use (blocking: ~ms, at start).

    Raises OSError when the directory cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if key_path.exists() and _usable(cert_path, hosts):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voipbin sandbox")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def https_config(http: uvicorn.Config, port: int, directory: Path) -> uvicorn.Config | None:
    """A copy of the HTTP server's config serving the same app over TLS on ``port``; the app's
    lifespan runs once, in the HTTP server. Makes the certificate on first use (`ensure_certificate`).
    None (logged) when ``port`` is taken: the sandbox then serves plain HTTP only."""
    if not _port_free(http.host, port):
        log.error("HTTPS port in use; serving HTTP only (set VOIPBIN_HTTPS_PORT)", port=port)
        return None
    cert, key = ensure_certificate(directory)
    return uvicorn.Config(http.app, host=http.host, port=port, loop=http.loop, http=http.http, ws=http.ws,
                          log_config=None, access_log=False, lifespan="off", ssl_certfile=str(cert),
                          ssl_keyfile=str(key), ws_ping_interval=http.ws_ping_interval,
                          ws_ping_timeout=http.ws_ping_timeout, ws_max_size=http.ws_max_size)


async def serve_together(servers: Sequence[uvicorn.Server]) -> None:
    """Run every server in this loop; when one stops (signal, error) the others are asked to stop too."""
    tasks = [asyncio.ensure_future(server.serve()) for server in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
