#!/usr/bin/env bash
# Shows that the fault campaign finds known bugs: each patch in crates/campaign/plants/ plants
# one (its first line says which, its second the topology), in a throw-away worktree of HEAD;
# the campaign then runs as in CI (scripts/campaign.sh's seed and length) and must report
# anomalies (exit status 1). Prints, per bug, whether it was found and when the first anomaly
# of each invariant was seen. Not part of CI (one release build per bug); run by hand:
#
#   bash scripts/plant.sh                 # every planted bug
#   bash scripts/plant.sh redirect        # one
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="$root/target/plant"
work=$(mktemp -d "${TMPDIR:-/tmp}/plant.XXXXXX")
trap 'git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/tree" HEAD >/dev/null

names=("$@")
if ((${#names[@]} == 0)); then
  for patch in crates/campaign/plants/*.patch; do names+=("$(basename "$patch" .patch)"); done
fi
failed=0
for name in "${names[@]}"; do
  patch="$root/crates/campaign/plants/$name.patch"
  topology=$(sed -n 's/^topology: //p' "$patch" | head -1)
  case $topology in single) seed=2101 duration=45 ;; *) seed=2102 duration=60 ;; esac
  echo "== $name: $(head -1 "$patch")"
  git -C "$work/tree" checkout --quiet -- .
  git -C "$work/tree" apply "$patch"
  (cd "$work/tree" && cargo build --quiet --release -p campaign)
  set +e
  "$CARGO_TARGET_DIR/release/campaign" --topology "$topology" --seed "$seed" \
    --duration "$duration" --out "$root/target/plant/runs/$name" >"$work/$name.txt" 2>&1
  code=$?
  set -e
  grep -E '^Invariant|^RESULT' "$work/$name.txt" || true
  if [ "$code" = 1 ]; then
    echo "== $name: FOUND"
  else
    echo "== $name: NOT FOUND (exit status $code)"
    failed=1
  fi
done
exit "$failed"
