#!/usr/bin/env bash
# A voipbin cluster on one machine (issue 19): Kamailio as the SIP edge, 1 api, 2 media pods, 1 worker,
# on the local PostgreSQL and NATS (started if absent, as `make services` does).
#
#   scripts/cluster.sh up [--seed]   start what is not running (--seed: the sandbox admin account
#                                    admin@localhost / admin@localhost, its customer and one number)
#   scripts/cluster.sh down          stop everything it started (SIGTERM, then SIGKILL after 15 s)
#   scripts/cluster.sh status        one line per process: running or not, pid, address
#   scripts/cluster.sh start NAME    start one process (kamailio, api, media-1, media-2, worker, speech-1 ...)
#   scripts/cluster.sh stop NAME     stop one process
#   scripts/cluster.sh reload        rewrite Kamailio's dispatcher list (the media pods of
#                                    CLUSTER_MEDIA_SIP_PORTS and every media pod heartbeating in the
#                                    database, e.g. started on another machine) and make Kamailio read it
#
# Logs, pid files, the generated Kamailio config and the shared secrets live in $CLUSTER_DIR (default
# var/cluster). Settings (environment, defaults in brackets): CLUSTER_DIR, CLUSTER_HOST [127.0.0.1],
# CLUSTER_SIP_PORT [5060] (Kamailio: the one SIP address of phones and trunks), CLUSTER_API_PORT [8080],
# CLUSTER_MEDIA_SIP_PORTS ["5071 5072"], CLUSTER_DB [voipbin_cluster], CLUSTER_PG_DSN
# [postgresql://postgres@127.0.0.1:5432], CLUSTER_BUS_URL [nats://127.0.0.1:4222], CLUSTER_SPEECH_PODS [0]
# (speech-1 ... speech-N: `--role speech` pods running whisper and piper for the media pods, which then
# send them their decodes and sentences, VOIPBIN_SPEECH_REMOTE=nats); any VOIPBIN_* variable is passed to
# every voipbin process.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${CLUSTER_PYTHON:-$ROOT/.venv/bin/python}"
DIR="${CLUSTER_DIR:-$ROOT/var/cluster}"
HOST="${CLUSTER_HOST:-127.0.0.1}"
SIP_PORT="${CLUSTER_SIP_PORT:-5060}"
API_PORT="${CLUSTER_API_PORT:-8080}"
read -r -a MEDIA_PORTS <<< "${CLUSTER_MEDIA_SIP_PORTS:-5071 5072}"
DB="${CLUSTER_DB:-voipbin_cluster}"
PG_DSN="${CLUSTER_PG_DSN:-postgresql://postgres@127.0.0.1:5432}"
BUS_URL="${CLUSTER_BUS_URL:-nats://127.0.0.1:4222}"
SPEECH_PODS="${CLUSTER_SPEECH_PODS:-0}"
DB_URL="${PG_DSN/postgresql:\/\//postgresql+asyncpg://}/$DB"

names() {
    echo kamailio api
    local i
    for i in "${!MEDIA_PORTS[@]}"; do echo "media-$((i + 1))"; done
    echo worker
    for ((i = 1; i <= SPEECH_PODS; i++)); do echo "speech-$i"; done
}

pid_of() {  # the pid of NAME if it runs, else nothing
    local file="$DIR/$1.pid"
    [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && cat "$file"
    return 0
}

secret() {  # a random secret kept in the run dir, shared by every process of the cluster
    local file="$DIR/$1"
    [ -s "$file" ] || (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$file")
    cat "$file"
}

prepare() {
    mkdir -p "$DIR"
    bash "$ROOT/scripts/ensure-services.sh"
    "$PY" - "$PG_DSN/postgres" "$DB" <<'EOF'
import asyncio, sys
import asyncpg
async def main(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
asyncio.run(main(*sys.argv[1:]))
EOF
    export VOIPBIN_DATABASE_URL="$DB_URL" VOIPBIN_BUS_URL="$BUS_URL"
    "$PY" -m voipbin.cli migrate > "$DIR/migrate.log" 2>&1
    local pods=() port
    for port in "${MEDIA_PORTS[@]}"; do pods+=(--pod "$HOST:$port"); done
    python3 "$ROOT/deploy/kamailio/render.py" --listen "$HOST:$SIP_PORT" "${pods[@]}" --out "$DIR/kamailio" > /dev/null
}

voipbin_env() {  # NAME -> the environment of that voipbin process, as VAR=value words
    local name="$1" i
    echo "VOIPBIN_DATABASE_URL=$DB_URL" "VOIPBIN_BUS_URL=$BUS_URL" "VOIPBIN_JWT_SECRET=$(secret jwt_secret)" \
         "VOIPBIN_SIP_NONCE_SECRET=$(secret nonce_secret)" "VOIPBIN_POD_ID=$name" \
         "VOIPBIN_SIP_TRUSTED_PROXIES=$HOST" "VOIPBIN_LOG_FORMAT=${VOIPBIN_LOG_FORMAT:-console}"
    case "$name" in
        api) echo "VOIPBIN_API_HOST=$HOST" "VOIPBIN_API_PORT=$API_PORT" "VOIPBIN_SIP_ENABLED=false" ;;
        worker|speech-*) echo "VOIPBIN_SIP_ENABLED=false" ;;
        media-*)
            [ "$SPEECH_PODS" -gt 0 ] && echo "VOIPBIN_SPEECH_REMOTE=nats"
            i="${name#media-}"
            # each pod: its own SIP port (the dispatcher's entry) and RTP range, advertised as its own
            echo "VOIPBIN_SIP_HOST=$HOST" "VOIPBIN_SIP_PORT=${MEDIA_PORTS[$((i - 1))]}" \
                 "VOIPBIN_SIP_ADVERTISED_HOST=${CLUSTER_ADVERTISED_HOST:-$HOST}" \
                 "VOIPBIN_RTP_PORT_MIN=$((20000 + (i - 1) * 5000))" "VOIPBIN_RTP_PORT_MAX=$((24999 + (i - 1) * 5000))" ;;
    esac
}

start_one() {
    local name="$1" role
    [ -n "$(pid_of "$name")" ] && return 0
    if [ "$name" = kamailio ]; then
        command -v kamailio > /dev/null || { echo "kamailio is not installed (make install)" >&2; exit 1; }
        nohup kamailio -f "$DIR/kamailio/kamailio.cfg" -DD -E -m 64 -M 16 > "$DIR/kamailio.log" 2>&1 &
    else
        role="${name%%-*}"
        # shellcheck disable=SC2046
        nohup env $(voipbin_env "$name") "$PY" -m voipbin.cli serve --role "$role" >> "$DIR/$name.log" 2>&1 &
    fi
    echo $! > "$DIR/$name.pid"
}

wait_ready() {  # every process answers: kamailio and media pods on SIP (OPTIONS), the api on HTTP
    "$PY" - "$HOST" "$SIP_PORT" "$API_PORT" "${MEDIA_PORTS[@]}" <<'EOF'
import socket, sys, time, urllib.request
host, sip, api, *media = sys.argv[1:]
def sip_ok(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0)); s.settimeout(0.5)
        me = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{me};branch=z9hG4bKready{time.time_ns()}\r\n"
                  f"Max-Forwards: 70\r\nFrom: <sip:ready@{host}>;tag=r\r\nTo: <sip:{host}:{port}>\r\n"
                  f"Call-ID: ready-{time.time_ns()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), (host, port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False
def api_ok() -> bool:
    try:
        return urllib.request.urlopen(f"http://{host}:{api}/openapi.json", timeout=1).status == 200
    except OSError:
        return False
deadline = time.monotonic() + 90
pending = {f"sip {p}": (lambda p=int(p): sip_ok(p)) for p in [sip, *media]} | {"api": api_ok}
while pending and time.monotonic() < deadline:
    pending = {k: f for k, f in pending.items() if not f()}
    if pending:
        time.sleep(0.3)
if pending:
    sys.exit(f"not ready after 90 s: {', '.join(pending)}")
EOF
}

dispatcher_pods() {  # --pod HOST:PORT words: the configured media pods and the live ones in the database
    local port
    for port in "${MEDIA_PORTS[@]}"; do echo "--pod $HOST:$port"; done
    "$PY" - "$PG_DSN/$DB" <<'EOF'
import asyncio, sys
import asyncpg
async def main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT DISTINCT sip_host, sip_port FROM pods WHERE role IN ('media', 'all') "
                                "AND sip_port > 0 AND tm_heartbeat > (now() at time zone 'utc') - interval '30 seconds'")
    finally:
        await conn.close()
    for row in rows:
        print(f"--pod {row['sip_host']}:{row['sip_port']}")
asyncio.run(main(*sys.argv[1:]))
EOF
}

reload() {
    # shellcheck disable=SC2046
    python3 "$ROOT/deploy/kamailio/render.py" --dispatcher-only $(dispatcher_pods | sort -u) --out "$DIR/kamailio" > /dev/null
    local answer
    answer="$(kamcmd -s "unix:$DIR/kamailio/kamailio_ctl" dispatcher.reload)"
    case "$answer" in *error*) echo "dispatcher.reload: $answer" >&2; exit 1 ;; esac
    kamcmd -s "unix:$DIR/kamailio/kamailio_ctl" dispatcher.list | grep -E 'URI' || true
}

seed() {
    env $(voipbin_env seed) "$PY" - <<'EOF'
import asyncio
from voipbin.config import Settings
from voipbin.runtime import Runtime
async def main() -> None:
    runtime = Runtime(Settings())
    seed = await runtime.seed_sandbox()
    await runtime.engine.dispose()
    print(f"seeded: {seed.username} / {seed.password}, customer {seed.customer_id}, number {seed.number}")
asyncio.run(main())
EOF
}

stop_one() {
    local name="$1" pid
    pid="$(pid_of "$name")"
    [ -z "$pid" ] && { rm -f "$DIR/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$DIR/$name.pid"
}

status() {
    local name pid
    for name in $(names); do
        pid="$(pid_of "$name")"
        printf '%-9s %-8s %s\n' "$name" "${pid:+running}" "${pid:+pid $pid}"
    done
    echo "SIP $HOST:$SIP_PORT (Kamailio)   API http://$HOST:$API_PORT   run dir $DIR"
}

case "${1:-}" in
    up)
        prepare
        for name in $(names); do start_one "$name"; done
        wait_ready || { status; exit 1; }
        [ "${2:-}" = --seed ] && seed
        status ;;
    down) for name in $(names | tac); do stop_one "$name"; done ;;
    status) status ;;
    start) [ -n "${2:-}" ] || { echo "usage: $0 start NAME" >&2; exit 2; }
           prepare; start_one "$2" ;;
    stop) [ -n "${2:-}" ] || { echo "usage: $0 stop NAME" >&2; exit 2; }
          stop_one "$2" ;;
    reload) reload ;;
    *) echo "usage: $0 up [--seed]|down|status|start NAME|stop NAME|reload" >&2; exit 2 ;;
esac
