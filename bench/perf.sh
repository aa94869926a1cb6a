#!/usr/bin/env bash
# Where a server's CPU goes under load, natively (no valgrind): one server and a private Redis,
# wrk on one route, and `perf` attached to the server for the measured seconds. Prints per
# request: requests/s, the server's user-space and kernel CPU (from /proc/PID/stat) and its
# system calls by kind (perf's syscall tracepoints); with PERF_RECORD=FILE it samples the
# server instead (`perf record -e cpu-clock`, for `perf report -i FILE`). The question it
# answers: how much of a request's CPU is the session library's, and how much the kernel's
# TCP work, which every library pays alike (bench/results/wrk-ceiling.md).
#
# Usage: bash bench/perf.sh ROUTE LIB...   ROUTE: read | modify | new | untouched
#                                            LIB: ours | tower | actix
# Env: PERF_SECONDS (5), PERF_RECORD=FILE (sample instead of counting; FILE.LIB.ROUTE),
#      BENCH_OURS_BIN (our counter; default the release build, built first; a `profiling`
#      build names more functions), BENCH_NO_BUILD=1, BENCH_PEER_TARGET_DIR (bench/target).
# Needs perf (Debian: linux-perf) and permission to trace the server (root, or
# kernel.perf_event_paranoid <= 1). Loopback only; everything it starts is killed on exit.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
log() { echo "[perf] $*" >&2; }
die() { echo "[perf] ERROR: $*" >&2; exit 1; }
(($# >= 2)) || die "usage: bash bench/perf.sh ROUTE LIB... (ROUTE: read modify new untouched)"
ROUTE=$1
shift
SECONDS_=${PERF_SECONDS:-5}
case $ROUTE in
  read) path=/read ;;
  modify | new) path=/incr ;;
  untouched) path=/ ;;
  *) die "unknown route $ROUTE (read modify new untouched)" ;;
esac

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
need_tools perf perf=linux-perf /usr/bin/time=time curl=curl wrk=wrk redis-server=redis-server redis-cli=redis-tools python3=python3

PEER_TARGET=${BENCH_PEER_TARGET_DIR:-$BENCH_DIR/target}
peer_binaries "$PEER_TARGET"
BIN[ours]="${BENCH_OURS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/counter}"
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  if [[ " $* " == *" ours "* && -z ${BENCH_OURS_BIN:-} ]]; then build_counter; fi
  if [[ " $* " == *" tower "* || " $* " == *" actix "* ]]; then build_peers "$PEER_TARGET"; fi
fi

scratch_dir dm-perf
TMP=$SCRATCH

private_redis
counter_ini "$TMP/counter.ini" "$RPORT"

CALLS=(futex epoll_wait recvfrom sendto read write writev getrandom)
EVENTS=raw_syscalls:sys_enter$(printf ',syscalls:sys_enter_%s' "${CALLS[@]}")

for lib in "$@"; do
  [[ -x ${BIN[$lib]:-} ]] || die "no binary for $lib (${BIN[$lib]:-unknown library})"
  port=$(free_port)
  case $lib in
    ours) args=(--config "$TMP/counter.ini") ;;
    *) args=(--redis "redis://127.0.0.1:$RPORT/") ;;
  esac
  "${BIN[$lib]}" "${args[@]}" --listen "127.0.0.1:$port" >"$TMP/$lib.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  ok=0
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && { ok=1; break; }
    sleep 0.05
  done
  ((ok)) || { cat "$TMP/$lib.log" >&2; die "$lib did not start on 127.0.0.1:$port"; }
  redis-cli -p "$RPORT" flushall >/dev/null
  cookie=""
  [[ $ROUTE == new ]] || cookie=$(python3 "$BENCH_DIR/client.py" create "127.0.0.1:$port" 1)
  export WRK_PATH=$path COOKIE=$cookie COOKIE_FILE=""
  wrk -t2 -c64 -d1s -s "$BENCH_DIR/wrk/bench.lua" "http://127.0.0.1:$port" >/dev/null 2>&1 || true
  read -r u0 s0 <<<"$(cpu_ticks "$pid")"
  if [[ -n ${PERF_RECORD:-} ]]; then
    perf record -q -F 4999 -e cpu-clock -p "$pid" -o "$PERF_RECORD.$lib.$ROUTE" -- sleep "$SECONDS_" 2>/dev/null &
  else
    perf stat -x, -e "$EVENTS" -p "$pid" -o "$TMP/stat" -- sleep "$SECONDS_" &
  fi
  perfpid=$!
  read -r ru0 rs0 <<<"$(cpu_ticks "$RPID")"
  read -r -a idle0 <<<"$(head -1 /proc/stat)"
  # wrk's own CPU (user and kernel, seconds) from GNU time's format, last line of its output
  /usr/bin/time -f "WRKCPU %U %S" wrk -t2 -c64 -d"${SECONDS_}s" -s "$BENCH_DIR/wrk/bench.lua" \
    "http://127.0.0.1:$port" >"$TMP/wrk.out" 2>&1
  read -r -a idle1 <<<"$(head -1 /proc/stat)"
  wait "$perfpid"
  read -r u1 s1 <<<"$(cpu_ticks "$pid")"
  read -r ru1 rs1 <<<"$(cpu_ticks "$RPID")"
  python3 - "$lib" "$ROUTE" "$TMP/wrk.out" "$TMP/stat" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" \
    "$((ru1 + rs1 - ru0 - rs0))" "$((idle1[4] - idle0[4]))" "$(nproc)" <<'PY'
import os, sys
lib, route, wrk_out, stat, u0, s0, u1, s1, clk, redis_ticks, idle_ticks, cores = sys.argv[1:]
lines = open(wrk_out).read().splitlines()
w = next(dict(kv.split("=") for kv in l.split()[1:]) for l in lines if l.startswith("BENCH "))
wrk_cpu = next(l.split()[1:] for l in lines if l.startswith("WRKCPU "))
n, secs = int(w["requests"]), int(w["duration_us"]) / 1e6
tick = 1e6 / int(clk) / n
app = ((int(u1) - int(u0)) * tick, (int(s1) - int(s0)) * tick)
wrk = (float(wrk_cpu[0]) + float(wrk_cpu[1])) * 1e6 / n
print(f"{lib} {route}: {n / secs:,.0f} req/s; CPU per request: server user {app[0]:.2f} µs +"
      f" kernel {app[1]:.2f} µs, Redis {int(redis_ticks) * tick:.2f} µs, wrk {wrk:.2f} µs;"
      f" machine idle {int(idle_ticks) / int(clk) / secs / int(cores):.0%}")
if os.path.exists(stat):  # perf stat -x, : value,unit,event,...
    for line in open(stat):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].replace(".", "").isdigit():
            name = f[2].split(":")[-1].removeprefix("sys_enter_")
            print(f"  {'system calls' if name == 'sys_enter' else name:<12} {float(f[0]) / n:7.3f} per request")
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
