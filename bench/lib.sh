# Shared by bench/run.sh, bench/instructions.sh and bench/perf.sh (sourced, not run).

# need_tools TAG TOOL=PACKAGE...: installs the Debian package of every TOOL that is not on the
# PATH (as root, with apt-get), or stops with the command that would.
need_tools() {
  local tag=$1 pair
  shift
  local need=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || need+=("${pair#*=}")
  done
  ((${#need[@]})) || return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "[$tag] ERROR: missing ${need[*]}: run 'sudo apt-get install -y ${need[*]}' and start again" >&2
    exit 1
  fi
  echo "[$tag] installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# free_ports N: N distinct free TCP ports on 127.0.0.1 (all bound at once, then released; fine
# for private test servers), space-separated. free_port: one of them.
free_ports() {
  python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
free_port() { free_ports 1; }

# cpu_ticks PID: "utime stime" of all threads of a process (user space, kernel), in clock ticks.
cpu_ticks() {
  local stat rest f
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  echo "${f[11]} ${f[12]}"
}

# counter_ini FILE REDIS_PORT [SESSION_LINE...]: our counter's configuration for one private
# Redis on 127.0.0.1 (the same in every benchmark: key prefix dm:, a pool of one connection),
# with SESSION_LINEs added to its [session] section.
counter_ini() {
  local file=$1 port=$2
  shift 2
  {
    echo "[session]"
    echo "cookie_name = dmsession"
    echo "cookie_lifespan = 86400"
    echo "redis_connection_pool = default"
    (($#)) && printf '%s\n' "$@"
    echo "[redis]"
    echo "default[host] = 127.0.0.1"
    echo "default[port] = $port"
    echo "default[prefix] = dm:"
    echo "default[pool_size] = 1"
  } >"$file"
}

# peer_binaries TARGET_DIR: the BIN entries of the two peers built into TARGET_DIR; the caller
# adds its own `ours`. build_peers TARGET_DIR builds them there (never into the root
# workspace's CARGO_TARGET_DIR); build_counter builds our counter example (release).
peer_binaries() {
  declare -gA BIN
  BIN[tower]="$1/release/peer-tower-sessions"
  BIN[actix]="$1/release/peer-actix-session"
}
build_peers() {
  log "building the peers (cargo build --release in bench/, into $1)"
  (cd "$BENCH_DIR" && env -u CARGO_TARGET_DIR cargo build --release --quiet --target-dir "$1" \
    -p peer-tower-sessions -p peer-actix-session)
}
build_counter() {
  log "building our counter (cargo build --release --example counter)"
  (cd "$BENCH_DIR/.." && cargo build --release --quiet --example counter -p redis-sessions)
}

# scratch_dir NAME: sets SCRATCH to a new directory /tmp/NAME.XXXXXX and PIDS to an empty list.
# On exit (also after Ctrl-C or a failure) every process in PIDS is killed and waited for, and
# SCRATCH is removed.
scratch_dir() {
  SCRATCH=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap clean_up_scratch EXIT
  trap 'exit 130' INT TERM
}
clean_up_scratch() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}

# private_redis: starts a redis-server without persistence on a free loopback port, its files in
# SCRATCH (see scratch_dir), adds it to PIDS and waits until it answers; sets RPORT and RPID.
private_redis() {
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$SCRATCH" \
    --daemonize no --logfile "$SCRATCH/redis.log" &
  RPID=$!
  PIDS+=("$RPID")
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  die "redis-server did not start (see $SCRATCH/redis.log)"
}
