#!/usr/bin/env bash
# Short, bounded run of every cargo-fuzz target in fuzz/ (called by .ci/run): builds them, then
# runs each for FUZZ_SECONDS (default 15) from a fresh corpus seeded with fuzz/regressions/<target>
# when that exists. A crash, panic, timeout or leak fails the run and leaves the input in
# fuzz/artifacts/<target>/ (run it again with `cargo fuzz run <target> <file>`).
#
# Longer runs by hand: FUZZ_SECONDS=600 bash scripts/fuzz.sh, or one target with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run stored_data -- -max_total_time=600`.
#
# Needs only the Rust toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer from C++):
# installs cargo-fuzz with `cargo install --locked`, and g++ from Debian's packages as root, when
# missing. cargo fuzz wants nightly flags (-Zsanitizer, -Cpasses=sancov-module); RUSTC_BOOTSTRAP=1
# lets the stable toolchain take them.
#
# Settings: FUZZ_SECONDS; FUZZ_SANITIZER (default none: the library forbids unsafe code, and
# without AddressSanitizer the build is faster and each target runs 2-3 times as many inputs in
# its seconds; `address` for the long runs); FUZZ_CODEGEN_UNITS (default 16 instead of cargo
# fuzz's 1: a much shorter build for slightly slower code); FUZZ_TARGET_DIR (default a cache under $HOME, kept
# between CI runs on the same machine, so only the first run pays for the full build).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-15}"
sanitizer="${FUZZ_SANITIZER:-none}"
codegen_units="${FUZZ_CODEGEN_UNITS:-16}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-sessions/fuzz-target}"

if ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "fuzz.sh: installing g++ (libFuzzer is C++)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  else
    echo "fuzz.sh: no C++ compiler: run 'sudo apt-get install -y g++' and start again" >&2
    exit 1
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer" --codegen-units "$codegen_units"
echo "fuzz.sh: built in $((SECONDS - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  corpus="$work/$target"
  mkdir -p "$corpus"
  seeds=()
  if [ -d "fuzz/regressions/$target" ]; then
    seeds+=("fuzz/regressions/$target")
  fi
  echo "== fuzz $target for ${seconds} s"
  # -timeout: an input that runs 10 s is a hang.
  log="$work/$target.log"
  status=0
  cargo fuzz run "$target" --sanitizer "$sanitizer" --codegen-units "$codegen_units" \
    "$corpus" "${seeds[@]}" -- -max_total_time="$seconds" -timeout=10 >"$log" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz.sh: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  # libFuzzer's closing line: executions (#N), coverage and corpus size.
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || tail -n 3 "$log"
done
echo "fuzz.sh: every target ran ${seconds} s without a finding ($((SECONDS - start)) s in all)"
