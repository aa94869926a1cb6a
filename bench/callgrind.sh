#!/usr/bin/env bash
# Instructions per request of one counter binary (ours only), e.g. a `profiling` build or an
# old worktree's build: a shortcut for bench/instructions.sh, which holds the method (and also
# measures the peers, and checks against the CI baseline).
# Usage: bash bench/callgrind.sh [COUNTER_BINARY] [ROUTES...]
#   COUNTER_BINARY defaults to ${CARGO_TARGET_DIR:-target}/release/examples/counter (built first
#   when it is the default); ROUTES default to "read modify new untouched".
#   Env: SHORT (200), LONG (1200), INSTR_KEEP=DIR (keep the callgrind files for callgrind_annotate),
#   COUNTER_FLAGS (extra flags for the counter, e.g. "--metrics" to install its recorder).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if (($#)); then
  export INSTR_OURS_BIN=$1
  shift
fi
export INSTR_LIBS=ours
export INSTR_ROUTES=${*:-"read modify new untouched"}
exec bash "$BENCH_DIR/instructions.sh"
