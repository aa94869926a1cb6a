#!/usr/bin/env bash
# Runs every test of the project: the Rust tests (unit, integration against private
# redis-server processes, doctests) and the demo's browser test in headless Chromium.
# Installs what it needs from Debian's packages when it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
# The TLS tests make their certificates with the openssl CLI.
command -v openssl >/dev/null || missing+=(openssl)
# The igbinary crate's interop tests decode its blobs with real PHP (igbinary and ds extensions);
# the `format = resonance` tests play the PHP application through Redis (redis extension).
if command -v php >/dev/null; then
  php_modules="$(php -m)"
  grep -qx igbinary <<<"$php_modules" || missing+=(php-igbinary)
  grep -qx ds <<<"$php_modules" || missing+=(php-ds)
  grep -qx redis <<<"$php_modules" || missing+=(php-redis)
else
  missing+=(php-cli php-igbinary php-ds php-redis)
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test.sh: ${missing[*]} missing: run 'sudo apt-get install -y ${missing[*]}' and start again" >&2
    exit 1
  fi
fi

cargo test --workspace
if [ -f crates/basket/browser-test/run.sh ]; then
  bash crates/basket/browser-test/run.sh
fi
