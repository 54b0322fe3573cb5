#!/usr/bin/env python3
"""Fill deploy/kamailio/kamailio.cfg.tmpl for one SIP edge and write its dispatcher list.

    python3 deploy/kamailio/render.py --listen 127.0.0.1:5060 --pod 127.0.0.1:5071 --pod 127.0.0.1:5072 \\
        --out var/cluster/kamailio

writes ``OUT/kamailio.cfg`` and ``OUT/dispatcher.list`` (set 1: the media pods' SIP addresses, each
probed with OPTIONS). Run Kamailio with ``kamailio -f OUT/kamailio.cfg -DD -E``. ``--advertise
HOST:PORT`` when phones reach the edge at another address (NAT in front of it). ``--dispatcher-only``
rewrites only ``OUT/dispatcher.list`` (a pod added or removed); a running Kamailio then reads it again
with ``kamcmd -s unix:OUT/kamailio_ctl dispatcher.reload`` (``scripts/cluster.sh reload`` does both). Standard library only,
so that it runs without the project's virtualenv. Exit status 2 with a message for a bad argument.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
MODULE_PATH = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
# dispatcher algorithms: 0 hash over Call-ID, 4 round-robin, 10 least-loaded (needs the dialog module)
HASH_CALL_ID = 0
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def host_port(text: str, *, default_port: int = 5060) -> tuple[str, int]:
    """``"127.0.0.1:5071"`` -> ("127.0.0.1", 5071); the host must be an IP address (Kamailio is run
    with dns=no); raises ValueError naming the value."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"not an IP:port: {text!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, number


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``{{NAME}}`` replaced; raises KeyError naming a placeholder without value."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for {{{{{name}}}}}")
        return values[name]
    return _PLACEHOLDER.sub(fill, template)


def dispatcher_list(pods: list[tuple[str, int]]) -> str:
    """Dispatcher set 1, one line per media pod (flags 0: probed like every entry, probing_mode 1)."""
    return "".join(f"1 sip:{host}:{port} 0 0\n" for host, port in pods)


def write_dispatcher(out: Path, pods: list[tuple[str, int]]) -> Path:
    """Write ``out/dispatcher.list`` for ``pods`` (replaced whole, so a reload never reads half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dispatcher.list"
    partial = out / "dispatcher.list.new"
    partial.write_text(dispatcher_list(pods))
    partial.replace(path)
    return path


def write_config(out: Path, *, listen: tuple[str, int], pods: list[tuple[str, int]],
                 advertise: tuple[str, int] | None = None, run_dir: Path | None = None, children: int = 2,
                 log_level: int = 1, ping_interval_s: int = 1, algorithm: int = HASH_CALL_ID) -> Path:
    """Write ``out/kamailio.cfg`` and ``out/dispatcher.list``; return the config's path."""
    out.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir or out
    write_dispatcher(out, pods)
    values = {
        "LOG_LEVEL": str(log_level), "CHILDREN": str(children),
        "LISTEN_HOST": listen[0], "LISTEN_PORT": str(listen[1]),
        "ADVERTISE": f" advertise {advertise[0]}:{advertise[1]}" if advertise else "",
        "ALIAS_HOST": advertise[0] if advertise else listen[0],
        "MODULE_PATH": MODULE_PATH, "RUN_DIR": str(run_dir.resolve()),
        "DISPATCHER_LIST": str((out / "dispatcher.list").resolve()),
        "PING_INTERVAL_S": str(ping_interval_s), "DS_ALGORITHM": str(algorithm),
    }
    config = out / "kamailio.cfg"
    config.write_text(render(TEMPLATE.read_text(), values))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:5060", help="IP:PORT Kamailio listens on (UDP and TCP)")
    parser.add_argument("--pod", action="append", default=[], help="IP:PORT of a media pod's SIP (repeat)")
    parser.add_argument("--advertise", default="", help="IP:PORT phones reach the edge at, if not --listen")
    parser.add_argument("--out", required=True, type=Path, help="folder for kamailio.cfg and dispatcher.list")
    parser.add_argument("--children", type=int, default=2, help="UDP/TCP worker processes")
    parser.add_argument("--log-level", type=int, default=1, help="Kamailio debug level (-3..3)")
    parser.add_argument("--algorithm", type=int, default=HASH_CALL_ID, help="dispatcher algorithm for INVITEs")
    parser.add_argument("--dispatcher-only", action="store_true", help="rewrite only OUT/dispatcher.list")
    args = parser.parse_args(argv)
    try:
        listen = host_port(args.listen)
        pods = [host_port(p) for p in args.pod]
        advertise = host_port(args.advertise) if args.advertise else None
    except ValueError as exc:
        parser.error(str(exc))
    if not pods:
        parser.error("give at least one --pod")
    if args.dispatcher_only:
        print(write_dispatcher(args.out, pods))
        return 0
    print(write_config(args.out, listen=listen, pods=pods, advertise=advertise, children=args.children,
                       log_level=args.log_level, algorithm=args.algorithm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
