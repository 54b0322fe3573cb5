"""Reference for ``bench/sip_register.py``: Kamailio (Debian ``kamailio``) as a registrar.

registrar + usrloc with bindings in memory only (``db_mode`` 0), digest authentication against one fixed
password (``pv_www_authenticate``, qop=auth, nonce-count checking on), answered statelessly (``sl``). The
realm is the To domain, as the voipbin registrar's is. ``children`` UDP workers (default 2).

    .venv/bin/python bench/reference/kamailio_registrar.py --port 5090 --password bench-password
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

CONFIG = """#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children={children}
auto_aliases=no
disable_tcp=yes
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "pv.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("auth", "secret", "{secret}")
modparam("auth", "nonce_count", 1)
modparam("registrar", "max_contacts", 10)
modparam("registrar", "min_expires", 60)
modparam("registrar", "max_expires", 3600)

request_route {{
    if (!is_method("REGISTER")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!pv_www_authenticate("$td", "{password}", "0")) {{
        www_challenge("$td", "1");
        exit;
    }}
    if (!save("location")) {{
        sl_reply_error();
    }}
    exit;
}}
"""


def available() -> bool:
    """Whether the ``kamailio`` binary and the modules used here are installed."""
    return shutil.which("kamailio") is not None and (MODULES / "registrar.so").exists()


def start(port: int, password: str, workdir: Path, *, children: int = 2,
          cpu: int | None = None) -> subprocess.Popen[bytes]:
    """Start Kamailio in the foreground on 127.0.0.1:``port`` (UDP), pinned to ``cpu`` when given, its
    config and log (kamailio.log) in ``workdir``. The caller polls for readiness (any SIP response) and
    terminates the returned process."""
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(CONFIG.format(children=children, port=port, modules=MODULES, password=password,
                                 secret=os.urandom(8).hex()))
    affinity = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return subprocess.Popen(["kamailio", "-f", str(cfg), "-DD", "-E", "-m", "128", "-M", "8",
                             "-Y", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=(workdir / "kamailio.log").open("wb"),
                            preexec_fn=affinity, cwd=workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5090)
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--children", type=int, default=2)
    args = parser.parse_args()
    proc = start(args.port, args.password, Path(tempfile.mkdtemp(prefix="kamailio-")), children=args.children)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
