#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: deterministic, unlike req/s on a
# shared machine, so it compares libraries and guards against regressions in CI. Method (issue
# 12): user-space instructions of the server process, one keep-alive HTTP connection, requests one
# after another; the figure is the difference of a LONG- and a SHORT-request run divided by
# LONG - SHORT (start-up and shutdown cancel out). All three servers use mimalloc, one worker
# (ours: `--workers 1`, tower-sessions: tokio current-thread + a fred pool of 1, actix-session:
# `--workers 1`) and one private Redis.
#
# Usage:
#   bash bench/instructions.sh                    # ours, tower-sessions, actix-session on the four
#                                                 # routes; markdown table, also written to
#                                                 # bench/results/instructions.md
#   bash bench/instructions.sh --check            # ours only (read, modify, new): fails when any
#                                                 # grows more than TOLERANCE_PCT over the baseline
#   bash bench/instructions.sh --update-baseline  # ours only: rewrites bench/instructions-baseline.txt
# Env: SHORT/LONG (requests; default 200/1200, 100/600 for --check and --update-baseline),
#      INSTR_LIBS ("ours tower actix"), INSTR_ROUTES ("read modify new untouched"),
#      INSTR_OURS_BIN (measure this counter binary, no build), INSTR_KEEP=DIR (keep the callgrind
#      files there, for callgrind_annotate), BENCH_NO_BUILD=1 (skip the cargo builds),
#      TOLERANCE_PCT (2), CARGO_TARGET_DIR (our counter), BENCH_PEER_TARGET_DIR (the peers; default
#      bench/target).
# Redis and the servers run on free loopback ports, private to this run, and are killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BASELINE="$BENCH_DIR/instructions-baseline.txt"
MODE=table
case ${1:-} in
  "") ;;
  --check) MODE=check ;;
  --update-baseline) MODE=update ;;
  *) echo "usage: bash bench/instructions.sh [--check | --update-baseline]" >&2; exit 2 ;;
esac
if [[ $MODE == table ]]; then
  SHORT=${SHORT:-200}; LONG=${LONG:-1200}
  LIBS=${INSTR_LIBS:-"ours tower actix"}
  ROUTES=${INSTR_ROUTES:-"read modify new untouched"}
else
  # The baseline is only comparable with the same request counts and the same build.
  SHORT=100; LONG=600; LIBS=ours; ROUTES="read modify new"
fi
TOLERANCE_PCT=${TOLERANCE_PCT:-2}
log() { echo "[instructions] $*" >&2; }
die() { echo "[instructions] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
need_tools instructions valgrind=valgrind redis-server=redis-server redis-cli=redis-tools curl=curl python3=python3

# ---------------------------------------------------------------- build
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PEER_TARGET=${BENCH_PEER_TARGET_DIR:-$BENCH_DIR/target}
peer_binaries "$PEER_TARGET"
BIN[ours]="${INSTR_OURS_BIN:-$TARGET/release/examples/counter}"
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  if [[ " $LIBS " == *" ours "* && -z ${INSTR_OURS_BIN:-} ]]; then
    build_counter  # the release profile, exactly: the baseline is only valid for this build
  fi
  if [[ " $LIBS " == *" tower "* || " $LIBS " == *" actix "* ]]; then
    build_peers "$PEER_TARGET"
  fi
fi
for l in $LIBS; do
  [[ -n ${BIN[$l]:-} ]] || die "unknown library '$l' (ours tower actix)"
  [[ -x ${BIN[$l]} ]] || die "missing binary ${BIN[$l]}"
done

# ---------------------------------------------------------------- Redis
scratch_dir instructions
WORK=$SCRATCH
private_redis
# Ours: the same configuration as bench/run.sh's (curl sends the cookie back over plain HTTP).
counter_ini "$WORK/counter.ini" "$RPORT" "cookie_secure = false"

# ---------------------------------------------------------------- one run
# run LIB ROUTE N: sets TOTAL to the instructions of a server process that answered N requests
# to ROUTE (plus one request that takes a cookie and the start-up probes, the same in every run).
# Not called in a subshell, so that PIDS keeps the server for the cleanup if anything fails.
run() {
  local lib=$1 route=$2 n=$3 port out pid cookie path hdr ok=0
  port=$(free_port)
  out="$WORK/cg.$lib.$route.$n"
  local args=(--listen "127.0.0.1:$port")
  case $lib in
    # COUNTER_FLAGS: extra flags for our counter, e.g. "--metrics" to count a recorder's cost.
    # shellcheck disable=SC2206 # a list of flags
    ours) args+=(--config "$WORK/counter.ini" --workers 1 ${COUNTER_FLAGS:-}) ;;
    tower) args+=(--redis "redis://127.0.0.1:$RPORT/" --pool 1 --workers 0) ;;
    actix) args+=(--redis "redis://127.0.0.1:$RPORT/" --workers 1) ;;
  esac
  RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$out" "${BIN[$lib]}" "${args[@]}" \
    >"$WORK/server.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ((ok)) || { tail -20 "$WORK/server.log" >&2; die "$lib did not start under valgrind"; }
  cookie=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/incr" \
    | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
  [[ -n $cookie ]] || die "$lib: /incr set no cookie"
  case $route in
    read) path=/read; hdr="Cookie: $cookie" ;;
    modify) path=/incr; hdr="Cookie: $cookie" ;;
    new) path=/incr; hdr="X-None: 1" ;;
    untouched) path=/; hdr="Cookie: $cookie" ;;
    plain) path=/plain; hdr="Cookie: $cookie" ;;  # ours only: the same app without the layer
    *) die "unknown route $route (read modify new untouched plain)" ;;
  esac
  # One curl, many URLs on one host: one keep-alive connection, requests one after another.
  local urls=() i
  for ((i = 0; i < n; i++)); do urls+=("http://127.0.0.1:$port$path"); done
  curl -sf -H "$hdr" "${urls[@]}" >/dev/null || die "$lib: a request to $path failed"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  TOTAL=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1)
  [[ -n $TOTAL ]] || die "$lib: no callgrind summary in $out"
  if [[ -n ${INSTR_KEEP:-} ]]; then mkdir -p "$INSTR_KEEP" && cp "$out" "$INSTR_KEEP/"; fi
}

declare -A PER
for route in $ROUTES; do
  for lib in $LIBS; do
    run "$lib" "$route" "$SHORT"
    a=$TOTAL
    run "$lib" "$route" "$LONG"
    PER[$lib.$route]=$(((TOTAL - a) / (LONG - SHORT)))
    log "$lib $route: ${PER[$lib.$route]} instructions/request"
  done
done

# ---------------------------------------------------------------- report
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
case $MODE in
  table)
    {
      echo "Instructions per request (callgrind, user space, server process; one keep-alive"
      echo "connection, ($LONG - $SHORT) requests; \`bash bench/instructions.sh\`, git"
      echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d')):"
      echo
      header="| route |"; rule="|---|"
      for lib in $LIBS; do
        case $lib in ours) header+=" ours |" ;; tower) header+=" tower-sessions |" ;; actix) header+=" actix-session |" ;; esac
        rule+="---:|"
      done
      if [[ " $LIBS " == *" ours "* && $LIBS != ours ]]; then header+=" ours / fewest peer |"; rule+="---:|"; fi
      echo "$header"; echo "$rule"
      for route in $ROUTES; do
        line="| $route |"; fewest=""
        for lib in $LIBS; do
          line+=" $(commas "${PER[$lib.$route]}") |"
          if [[ $lib != ours ]] && [[ -z $fewest || ${PER[$lib.$route]} -lt $fewest ]]; then fewest=${PER[$lib.$route]}; fi
        done
        if [[ " $LIBS " == *" ours "* && -n $fewest ]]; then
          line+=" $(python3 -c "print(f'{$((PER[ours.$route])) / $fewest:.2f}')") |"
        fi
        echo "$line"
      done
    } >"$WORK/table.md"
    cat "$WORK/table.md"
    if [[ -z ${INSTR_ROUTES:-} && -z ${INSTR_LIBS:-} && -z ${INSTR_OURS_BIN:-} ]]; then
      mkdir -p "$BENCH_DIR/results"
      cp "$WORK/table.md" "$BENCH_DIR/results/instructions.md"
      log "wrote bench/results/instructions.md"
    fi
    ;;
  update)
    {
      echo "# Instructions per request of the counter example (release profile, --workers 1),"
      echo "# measured by \`bash bench/instructions.sh --check\` ($LONG - $SHORT requests, one keep-alive"
      echo "# connection). CI fails when a route grows more than ${TOLERANCE_PCT}% over its line here."
      echo "# Update deliberately, after a change that is meant to cost (or save) instructions, or after"
      echo "# a dependency update: bash bench/instructions.sh --update-baseline  -- then commit this"
      echo "# file with the reason. Measured at git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')."
      for route in $ROUTES; do echo "$route ${PER[ours.$route]}"; done
    } >"$BASELINE"
    cat "$BASELINE"
    log "wrote bench/instructions-baseline.txt"
    ;;
  check)
    [[ -f $BASELINE ]] || die "no baseline: bash bench/instructions.sh --update-baseline"
    fail=0
    printf '%-8s %10s %10s %8s\n' route baseline now change
    for route in $ROUTES; do
      base=$(awk -v r="$route" '$1 == r {print $2}' "$BASELINE")
      [[ -n $base ]] || die "no baseline for $route in $BASELINE"
      now=${PER[ours.$route]}
      pct=$(python3 -c "print(f'{($now - $base) * 100 / $base:+.1f}%')")
      printf '%-8s %10d %10d %8s\n' "$route" "$base" "$now" "$pct"
      if ((now * 100 > base * (100 + TOLERANCE_PCT))); then
        echo "[instructions] $route: $now instructions/request, more than ${TOLERANCE_PCT}% over the baseline $base" >&2
        fail=1
      fi
    done
    if ((fail)); then
      echo "[instructions] if the cost is deliberate: bash bench/instructions.sh --update-baseline, and commit bench/instructions-baseline.txt with the reason" >&2
      exit 1
    fi
    log "every route within ${TOLERANCE_PCT}% of the baseline"
    ;;
esac
