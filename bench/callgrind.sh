#!/usr/bin/env bash
# Instructions per request of a counter binary, counted by valgrind's callgrind (steady whatever
# the machine does, unlike req/s): one keep-alive connection, requests one after another, the
# difference of a LONG- and a SHORT-request run (start-up and shutdown cancel out).
# Usage: bash bench/callgrind.sh [COUNTER_BINARY] [ROUTES...]
#   COUNTER_BINARY defaults to target/release/examples/counter (build it first);
#   ROUTES default to "read modify new untouched". Env: SHORT (200), LONG (1200),
#   COUNTER_FLAGS (extra flags for the counter, e.g. "--metrics" to install its recorder).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/examples/counter}
shift || true
ROUTES=${*:-"read modify new untouched"}
SHORT=${SHORT:-200}
LONG=${LONG:-1200}
command -v valgrind >/dev/null || { echo "callgrind.sh: apt-get install -y valgrind" >&2; exit 1; }
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$WORK/redis.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
cat >"$WORK/config.ini" <<INI
[session]
cookie_secure = false
[redis]
default[port] = $RPORT
default[pool_size] = 1
INI

# Total instructions of one run of N requests to ROUTE.
run() {
  local route=$1 n=$2 port out pid cookie path
  port=$(free_port)
  out="$WORK/cg.$route.$n"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" --config "$WORK/config.ini" \
    --listen "127.0.0.1:$port" --workers 1 ${COUNTER_FLAGS:-} 2>"$WORK/vg.log" &
  pid=$!
  for _ in $(seq 300); do curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
  cookie=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/incr" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p')
  case $route in
    read) path=/read; hdr="Cookie: $cookie" ;;
    modify) path=/incr; hdr="Cookie: $cookie" ;;
    new) path=/incr; hdr="X-None: 1" ;;
    untouched) path=/; hdr="Cookie: $cookie" ;;
  esac
  local urls=()
  for _ in $(seq "$n"); do urls+=("http://127.0.0.1:$port$path"); done
  curl -s -H "$hdr" "${urls[@]}" >/dev/null
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sed -n "s/^summary: *\([0-9]*\).*/\1/p" "$out"* | head -1
}

printf '%-10s %14s\n' route "instr/request"
for route in $ROUTES; do
  a=$(run "$route" "$SHORT")
  b=$(run "$route" "$LONG")
  printf '%-10s %14d\n' "$route" $(((b - a) / (LONG - SHORT)))
done
