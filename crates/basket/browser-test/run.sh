#!/usr/bin/env bash
# Browser test of the basket demo, from nothing but a Rust toolchain on Debian:
#   crates/basket/browser-test/run.sh
# Installs what is missing (Debian's chromium and redis-server via apt-get, as root or with sudo;
# playwright-core via npm ci, no browser download), builds the demo in release mode, starts a
# private redis-server and the demo on free loopback ports, runs basket.spec.mjs in headless
# Chromium, and stops everything on exit. The page's screenshot goes to artifacts/basket.png
# under the workspace root. Exit status: the test's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
chromium="${CHROMIUM:-/usr/bin/chromium}"

say() { echo "browser-test: $*"; }

# Runs apt-get as root, or through sudo.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
            say "need $* but cannot install it: run \`apt-get install -y $*\` as root and start again"
            exit 1
        fi
        sudo=(sudo)
    fi
    say "installing $* (apt-get update && apt-get install -y $*)"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

[ -x "$chromium" ] || apt_install chromium
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || apt_install redis-server
command -v npm >/dev/null || apt_install nodejs npm
redis_server="$(command -v redis-server || echo /usr/bin/redis-server)"

if [ ! -d "$here/node_modules/playwright-core" ]; then
    say "installing playwright-core (npm ci; no browser download)"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

say "building the demo (cargo build --release --bin basket)"
(cd "$root" && cargo build --release --bin basket)

tmp="$(mktemp -d -t basket-browser-XXXXXX)"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$tmp"/*.log; do
            [ -s "$log" ] && { say "--- tail of $(basename "$log")"; tail -n 20 "$log"; }
        done
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
        console.log(s.address().port); s.close(); });'
}

# Whether 127.0.0.1:$1 answers: +PONG for Redis ($2 = redis), or accepts a connection (http).
probe() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        [ "$2" = redis ] || exit 0
        printf 'PING\r\n' >&3
        read -r -t 1 reply <&3 || exit 1
        [[ "$reply" == +PONG* ]]
    ) 2>/dev/null
}

# Waits up to 10 s for probe to succeed.
wait_for() {
    for _ in $(seq 1 200); do
        probe "$1" "$2" && return 0
        sleep 0.05
    done
    say "nothing answers on 127.0.0.1:$1 ($2)"
    return 1
}

redis_port="$(free_port)"
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_for "$redis_port" redis

cat >"$tmp/config.ini" <<EOF
[session]
cookie_name = dmsession
cookie_lifespan = 3600
redis_connection_pool = default
cookie_samesite = lax
cookie_secure = true

[redis]
default[host] = 127.0.0.1
default[port] = $redis_port
default[prefix] = dm:
default[pool_size] = 2
EOF

app_port="$(free_port)"
"$target_dir/release/basket" --config "$tmp/config.ini" --listen "127.0.0.1:$app_port" \
    >"$tmp/basket.log" 2>&1 &
pids+=($!)
wait_for "$app_port" http

mkdir -p "$root/artifacts"
say "running basket.spec.mjs against http://127.0.0.1:$app_port/"
BASE_URL="http://127.0.0.1:$app_port" \
    SCREENSHOT="$root/artifacts/basket.png" \
    CHROMIUM="$chromium" \
    node "$here/basket.spec.mjs"
