#!/usr/bin/env bash
# Load benchmark: our redis-sessions counter vs tower-sessions and actix-session, side by side.
# Usage: bash bench/run.sh          (see bench/README.md)
# Env:   BENCH_DURATION (s, default 5)  BENCH_ROUNDS (default 3)
#        BENCH_LIBS (default "ours tower actix"; "ours" is dropped with a warning while
#                    crates/redis-sessions/examples/counter.rs does not exist; "ours-cluster" is
#                    the same counter against a private 3-master Redis Cluster; "ours-resonance"
#                    the same counter with `format = resonance`, the PHP framework's layout). A library may
#                    carry extra server flags for tuning runs, joined by '+', '=' for the
#                    space: "tower tower+--workers=2 tower+--pool=4" runs three tower-sessions
#                    servers, interleaved like any other libraries. The pseudo-flag --bin=PATH
#                    (ours only) runs that counter binary for this library instead of the built
#                    one: "ours ours+--bin=/tmp/counter-old" compares two builds in one run.
#        BENCH_SCENARIOS (default "untouched read-hot read-many modify-hot modify-many new")
#        BENCH_SESSIONS (default 1000)  BENCH_CONNECTIONS (default 64)  BENCH_THREADS (default 2)
#        BENCH_NO_BUILD=1 (skip cargo builds)  BENCH_NO_MEMORY=1 (skip the memory table)
#        BENCH_OURS_BIN=PATH (use this prebuilt counter binary instead of building the example)
#        BENCH_PEER_TARGET_DIR=DIR (cargo target dir of the peers; default bench/target)
#        BENCH_CLUSTER=1 (add "ours-cluster" right after "ours" to BENCH_LIBS; off by default to
#                         keep the default run at ~7 min: the Cluster row adds ~2.5 min)
# All traffic goes to 127.0.0.1; every loop is bounded; Redis and the servers are private to
# this run and killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
DUR=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
LIBS=${BENCH_LIBS:-"ours tower actix"}
if [[ ${BENCH_CLUSTER:-0} == 1 && " $LIBS " != *" ours-cluster "* ]]; then
  with_cluster=""
  for l in $LIBS; do
    with_cluster+="$l "
    [[ $l == ours ]] && with_cluster+="ours-cluster "
  done
  [[ " $with_cluster " == *" ours-cluster "* ]] || with_cluster+="ours-cluster"
  LIBS=$(xargs <<<"$with_cluster")
fi
SCENARIOS=${BENCH_SCENARIOS:-"untouched read-hot read-many modify-hot modify-many new"}
SESSIONS=${BENCH_SESSIONS:-1000}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
RESULTS="$BENCH_DIR/results"
RAW="$RESULTS/raw.csv"
PEER_TARGET=${BENCH_PEER_TARGET_DIR:-$BENCH_DIR/target}
LUA="$BENCH_DIR/wrk/bench.lua"
COMMAND="BENCH_DURATION=$DUR BENCH_ROUNDS=$ROUNDS BENCH_LIBS=\"$LIBS\" BENCH_SCENARIOS=\"$SCENARIOS\" BENCH_SESSIONS=$SESSIONS BENCH_CONNECTIONS=$CONNS BENCH_THREADS=$THREADS bash bench/run.sh"

log() { echo "[bench] $*" >&2; }
die() { echo "[bench] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
need_tools bench wrk=wrk redis-server=redis-server redis-cli=redis-tools curl=curl python3=python3

# ---------------------------------------------------------------- libraries
libs=()
declare -A BASE EXTRA LBIN
for l in $LIBS; do
  BASE[$l]=${l%%+*}
  EXTRA[$l]=""
  LBIN[$l]=""
  [[ $l == *+* ]] && EXTRA[$l]=$(tr '+=' '  ' <<<"${l#*+}")
  if [[ " ${EXTRA[$l]} " == *" --bin "* ]]; then  # --bin PATH: this library's own binary
    read -r -a words <<<"${EXTRA[$l]}"
    EXTRA[$l]=""
    for ((i = 0; i < ${#words[@]}; i++)); do
      if [[ ${words[$i]} == --bin ]]; then LBIN[$l]=${words[$((i + 1))]:-}; i=$((i + 1))
      else EXTRA[$l]+="${words[$i]} "; fi
    done
    [[ -n ${LBIN[$l]} && ${BASE[$l]} == ours* ]] || die "--bin needs a path and is for ours only ($l)"
  fi
  case ${BASE[$l]} in
    ours|ours-cluster|ours-resonance)
      if [[ -n ${BENCH_OURS_BIN:-} || -f "$ROOT/crates/redis-sessions/examples/counter.rs" ]]; then libs+=("$l")
      else log "WARNING: crates/redis-sessions/examples/counter.rs does not exist yet: skipping $l"; fi ;;
    tower|actix) libs+=("$l") ;;
    *) die "unknown library '$l' in BENCH_LIBS (ours ours-cluster ours-resonance tower actix)" ;;
  esac
done
((${#libs[@]})) || die "no library to benchmark"

# ---------------------------------------------------------------- build
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  if [[ " ${BASE[*]} " == *" tower "* || " ${BASE[*]} " == *" actix "* ]]; then
    build_peers "$PEER_TARGET"
  fi
  if [[ " ${libs[*]} " == *" ours"* && -z ${BENCH_OURS_BIN:-} ]]; then
    build_counter
  fi
fi
peer_binaries "$PEER_TARGET"
BIN[ours]="${BENCH_OURS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/counter}"
BIN[ours-cluster]=${BIN[ours]}
BIN[ours-resonance]=${BIN[ours]}
for l in "${libs[@]}"; do
  [[ -n ${LBIN[$l]} ]] || LBIN[$l]=${BIN[${BASE[$l]}]}
  [[ -x ${LBIN[$l]} ]] || die "missing binary ${LBIN[$l]}"
done

# ---------------------------------------------------------------- processes
scratch_dir dm-bench
TMP=$SCRATCH

private_redis
REDIS_URL="redis://127.0.0.1:$RPORT/"

# ours-cluster: a private 3-master Redis Cluster (no replicas), each node in its own directory
CPORTS=()
if [[ " ${BASE[*]} " == *" ours-cluster "* ]]; then
  [[ $(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p') -ge 7 ]] \
    || die "ours-cluster needs redis-server 7 or later (--cluster-port)"
  read -r -a ports <<<"$(free_ports 6)"  # 3 client ports, 3 cluster bus ports
  for i in 0 1 2; do
    d="$TMP/cluster-$i"
    mkdir -p "$d"
    redis-server --port "${ports[$i]}" --cluster-port "${ports[$((i + 3))]}" --bind 127.0.0.1 \
      --save "" --appendonly no --dir "$d" --daemonize no --logfile "$d/redis.log" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 &
    PIDS+=($!)
    CPORTS+=("${ports[$i]}")
  done
  for p in "${CPORTS[@]}"; do
    for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null || die "cluster node $p did not start (see $TMP/cluster-*/redis.log)"
  done
  timeout 60 redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CPORTS[@]}") --cluster-replicas 0 \
    --cluster-yes >"$TMP/cluster-create.log" 2>&1 \
    || { cat "$TMP/cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
  ok=0
  for _ in $(seq 200); do
    ok=1
    for p in "${CPORTS[@]}"; do
      redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
    done
    ((ok)) && break
    sleep 0.1
  done
  ((ok)) || die "the Cluster did not reach cluster_state:ok on every node within 20 s"
  log "Redis Cluster: 3 masters on 127.0.0.1:${CPORTS[*]} (cluster_state:ok)"
fi
declare -A RPORTS  # per library: the Redis node(s) its server uses
for l in "${libs[@]}"; do
  if [[ ${BASE[$l]} == ours-cluster ]]; then RPORTS[$l]="${CPORTS[*]}"; else RPORTS[$l]=$RPORT; fi
done
RN() {  # RN LIB ARGS...: run ARGS on every Redis node of LIB (1, or the 3 Cluster masters)
  local l=$1 p
  shift
  for p in ${RPORTS[$l]}; do redis-cli -h 127.0.0.1 -p "$p" "$@"; done
}

counter_ini "$TMP/counter.ini" "$RPORT"
# ours-resonance: the PHP framework's layout (one igbinary blob per session, compare-and-set saves)
sed 's/^\[session\]$/[session]\nformat = resonance/' "$TMP/counter.ini" > "$TMP/counter-resonance.ini"
if ((${#CPORTS[@]})); then
  cat > "$TMP/counter-cluster.ini" <<INI
[session]
cookie_name = dmsession
cookie_lifespan = 86400
redis_connection_pool = default
[redis]
default[cluster_nodes] = $(printf '127.0.0.1:%s,' "${CPORTS[@]}" | sed 's/,$//')
default[prefix] = dm:
default[pool_size] = 1
INI
fi

declare -A ADDR PID
for l in "${libs[@]}"; do
  port=$(free_port)
  ADDR[$l]="127.0.0.1:$port"
  # shellcheck disable=SC2086 # EXTRA is a list of flags
  case ${BASE[$l]} in
    ours) "${LBIN[$l]}" --config "$TMP/counter.ini" --listen "${ADDR[$l]}" ${EXTRA[$l]} >"$TMP/${l//\//_}.log" 2>&1 & ;;
    ours-resonance) "${LBIN[$l]}" --config "$TMP/counter-resonance.ini" --listen "${ADDR[$l]}" ${EXTRA[$l]} \
                      >"$TMP/${l//\//_}.log" 2>&1 & ;;
    ours-cluster) "${LBIN[$l]}" --config "$TMP/counter-cluster.ini" --listen "${ADDR[$l]}" ${EXTRA[$l]} \
                    >"$TMP/${l//\//_}.log" 2>&1 & ;;
    *)    "${LBIN[$l]}" --redis "$REDIS_URL" --listen "${ADDR[$l]}" ${EXTRA[$l]} >"$TMP/${l//\//_}.log" 2>&1 & ;;
  esac
  PID[$l]=$!
  PIDS+=("${PID[$l]}")
done
for l in "${libs[@]}"; do
  ok=0
  for _ in $(seq 200); do
    if curl -fsS -o /dev/null "http://${ADDR[$l]}/" 2>/dev/null; then ok=1; break; fi
    kill -0 "${PID[$l]}" 2>/dev/null || break
    sleep 0.05
  done
  ((ok)) || { cat "$TMP/${l//\//_}.log" >&2; die "$l did not start on ${ADDR[$l]}"; }
  log "$l listening on ${ADDR[$l]} (pid ${PID[$l]})"
  RN "$l" flushall >/dev/null
  python3 "$BENCH_DIR/client.py" check "${ADDR[$l]}" || log "WARNING: $l breaks the route contract (above)"
done

# ---------------------------------------------------------------- measuring
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$RESULTS"
CENSUS="$TMP/census.csv"
CENSUS_N=${BENCH_CENSUS_REQUESTS:-200}
rm -f "$RAW" "$RESULTS/mem.csv"

census() {  # census SCENARIO LIB ADDR PATH COOKIE COOKIE_FILE: which commands the app sends
  # one MONITOR per Redis node of LIB (3 for ours-cluster), merged: the census sums the nodes
  local sc=$1 l=$2 addr=$3 path=$4 cookie=$5 file=$6 spec="-" mon p mons=()
  [[ -n $cookie ]] && spec=$cookie
  [[ -n $file ]] && spec="@$file"
  for p in ${RPORTS[$l]}; do
    timeout 30 redis-cli -h 127.0.0.1 -p "$p" monitor >"$TMP/monitor.$p" 2>/dev/null &
    mons+=($!)
  done
  for p in ${RPORTS[$l]}; do
    for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$p" client list | grep -q 'flags=O' && break; sleep 0.02; done
  done
  python3 "$BENCH_DIR/client.py" replay "$addr" "$path" "$CENSUS_N" "$spec" \
    || log "WARNING: census requests failed ($sc, $l)"
  sleep 0.2
  for mon in "${mons[@]}"; do kill "$mon" 2>/dev/null || true; done
  for mon in "${mons[@]}"; do wait "$mon" 2>/dev/null || true; done
  for p in ${RPORTS[$l]}; do cat "$TMP/monitor.$p"; done >"$TMP/monitor"
  python3 "$BENCH_DIR/report.py" census "$CENSUS" "$sc" "$l" "$CENSUS_N" "$TMP/monitor"
}

run_one() {  # run_one ROUND SCENARIO LIB
  local rnd=$1 sc=$2 l=$3 path cookie="" file="" u0 s0 u1 s1
  local addr=${ADDR[$l]}
  RN "$l" flushall >/dev/null
  case $sc in
    untouched) path=/ ;;
    plain) path=/plain ;;
    read-*) path=/read ;;
    locked-*) path=/incr-locked ;;
    modify-*|new) path=/incr ;;
    *) die "unknown scenario $sc" ;;
  esac
  case $sc in
    untouched|plain|*-hot) cookie=$(python3 "$BENCH_DIR/client.py" create "$addr" 1) ;;
    *-many) file="$TMP/cookies-${l//\//_}.txt"
            python3 "$BENCH_DIR/client.py" create "$addr" "$SESSIONS" >"$file" ;;
  esac
  export WRK_PATH=$path COOKIE=$cookie COOKIE_FILE=$file
  wrk -t"$THREADS" -c"$CONNS" -d1s -s "$LUA" "http://$addr" >/dev/null 2>&1 || true  # warm-up
  read -r u0 s0 <<<"$(cpu_ticks "${PID[$l]}")"
  RN "$l" info cpu commandstats stats clients >"$TMP/before"  # one section set per node
  wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 5s -s "$LUA" "http://$addr" >"$TMP/wrk.out" 2>&1 \
    || { cat "$TMP/wrk.out" >&2; die "wrk failed ($sc, $l)"; }
  RN "$l" info cpu commandstats stats clients >"$TMP/after"
  read -r u1 s1 <<<"$(cpu_ticks "${PID[$l]}")"
  unset WRK_PATH COOKIE COOKIE_FILE
  if [[ $rnd == 1 ]]; then census "$sc" "$l" "$addr" "$path" "$cookie" "$file"; fi
  python3 "$BENCH_DIR/report.py" row "$RAW" "$rnd" "$sc" "$l" "$TMP/wrk.out" "$TMP/before" "$TMP/after" \
    "$u0" "$s0" "$u1" "$s1" "$CLK_TCK"
}

log "Redis $(redis-server --version | awk '{print $3}'), wrk -t$THREADS -c$CONNS -d${DUR}s, $ROUNDS round(s), libraries: ${libs[*]}"
for rnd in $(seq "$ROUNDS"); do
  log "round $rnd/$ROUNDS"
  for sc in $SCENARIOS; do
    for l in "${libs[@]}"; do
      run_one "$rnd" "$sc" "$l"
      if [[ $sc == untouched && ${BASE[$l]} == ours ]]; then run_one "$rnd" plain "$l"; fi
      if [[ $sc == modify-* && ${BASE[$l]} == ours ]]; then run_one "$rnd" "locked-${sc#modify-}" "$l"; fi
    done
  done
done

# ---------------------------------------------------------------- memory per session
session_key_sizes() {  # session_key_sizes LIB: MEMORY USAGE of every session key (lock keys
  local p                # ignored), on every Redis node of LIB (each node measures its own keys)
  for p in ${RPORTS[$1]}; do
    redis-cli -h 127.0.0.1 -p "$p" --scan | grep -vi lock | sort -u >"$TMP/keys" || true
    [[ -s $TMP/keys ]] || continue
    sed 's/^/MEMORY USAGE "/; s/$/" SAMPLES 0/' "$TMP/keys" | redis-cli -h 127.0.0.1 -p "$p"
  done
}
if [[ ${BENCH_NO_MEMORY:-0} != 1 ]]; then
  log "memory per session"
  for l in "${libs[@]}"; do
    RN "$l" flushall >/dev/null
    python3 "$BENCH_DIR/client.py" create "${ADDR[$l]}" "$SESSIONS" >/dev/null
    session_key_sizes "$l" >"$TMP/mem-one"
    python3 "$BENCH_DIR/report.py" mem "$RESULTS/mem.csv" "$l" one "$TMP/mem-one"
    RN "$l" flushall >/dev/null
    python3 "$BENCH_DIR/client.py" chain "${ADDR[$l]}" "/incr?key=a" "/incr?key=b" "/incr?key=c" >/dev/null
    session_key_sizes "$l" >"$TMP/mem-basket"
    python3 "$BENCH_DIR/report.py" mem "$RESULTS/mem.csv" "$l" basket "$TMP/mem-basket"
  done
fi

# ---------------------------------------------------------------- report
{
  echo "# Session library benchmark"
  echo
  echo "- command: \`$COMMAND\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "- Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), -t$THREADS -c$CONNS, ${DUR}s per run after a 1 s warm-up, runs interleaved per scenario (${libs[*]}), Redis flushed before each run; command census from MONITOR over $CENSUS_N sequential requests after each round-1 run"
  if ((${#CPORTS[@]})); then
    echo "- ours-cluster: the same counter (same \`pool_size = 1\`) against a private Redis Cluster of 3 masters, no replicas (\`--cluster-node-timeout 2000\`), every node flushed before each run; its Redis CPU, commands, read events, connections, census and memory are summed over the 3 nodes"
  fi
  echo "- servers, Redis and wrk share all cores; every server uses mimalloc"
} >"$TMP/header"
python3 "$BENCH_DIR/report.py" table "$RAW" "$RESULTS/mem.csv" "$CENSUS" "$TMP/header" "${libs[@]}" | tee "$RESULTS/latest.md"
log "wrote $RESULTS/latest.md (raw runs: $RAW)"
python3 "$BENCH_DIR/report.py" chart "$RAW" "$RESULTS/chart.svg" "${libs[@]}" \
  --title "$COMMAND" --date "$(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
log "wrote $RESULTS/chart.svg"
