#!/usr/bin/env bash
# Issue 16's build costs, before and after the crate split, side by side in one run on this machine:
#   - the warm-rebuild overhead of `kernels` against hand-written constants (each commit's own
#     scripts/bench-build.sh, ROUNDS rounds);
#   - a clean `cargo build --release` of the CLI (`-p tuner-runtime --bin cargo-autotune` before,
#     `-p tuner-cli` after), and a clean debug build of a user crate with no GPU (the offline fixture,
#     outside the workspace, as its manifest at that commit declares it), each from an empty target dir;
#   - the packages the user crate pulls in (`cargo tree -e normal,build`, distinct names and versions).
#   scripts/bench-split.sh BEFORE AFTER [ROUNDS]      e.g. scripts/bench-split.sh 1220b2b HEAD 15
# Prints one JSON object per commit on stdout (the last lines); progress on stderr.
set -euo pipefail
BEFORE=${1:?before commit}; AFTER=${2:?after commit}; ROUNDS=${3:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/bench-split.XXXXXX)
trap 'cd "$ROOT"; git worktree remove --force "$TMP/before" 2>/dev/null; git worktree remove --force "$TMP/after" 2>/dev/null; rm -rf "$TMP"' EXIT
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
for side in before after; do
    rev=$BEFORE; [ "$side" = after ] && rev=$AFTER
    git -C "$ROOT" worktree add -q --detach "$TMP/$side" "$rev"
done
for side in before after; do
    W=$TMP/$side; rev=$(git -C "$W" rev-parse --short HEAD)
    echo "bench-split: $side = $rev" >&2
    if [ "$side" = before ]; then cli=(-p tuner-runtime --bin cargo-autotune); else cli=(-p tuner-cli --bin cargo-autotune); fi
    cli_s=$(cd "$W" && CARGO_TARGET_DIR="$TMP/t-cli-$side" secs cargo build --release --offline --locked "${cli[@]}")
    # The user crate: the fixture, with the workspace's lock (as the tests build it).
    cp "$W/Cargo.lock" "$W/tests/fixtures/offline/Cargo.lock"
    user_s=$(cd "$W/tests/fixtures/offline" && CARGO_TARGET_DIR="$TMP/t-user-$side" AUTOTUNE_OFFLINE=1 secs cargo build --offline)
    deps=$(cd "$W/tests/fixtures/offline" && cargo tree --offline -e normal,build --prefix none 2>/dev/null | sed 's/ (\*)//; s/ (proc-macro)//' | awk '{print $1, $2}' | sort -u | wc -l)
    bb=$(cd "$W" && SEED_TARGET="$TMP/t-user-$side" scripts/bench-build.sh "$ROUNDS" 2>"$TMP/bb-$side.err" | tail -1)
    python3 - "$side" "$rev" "$cli_s" "$user_s" "$deps" "$bb" <<'PY'
import json, sys
side, rev, cli, user, deps, bb = sys.argv[1:]
bb = json.loads(bb)
print(json.dumps({"side": side, "commit": rev, "cli_release_build_s": float(cli), "user_crate_debug_build_s": float(user),
                  "user_crate_packages": int(deps), "warm_rebuild_overhead_pct": bb["overhead_pct"],
                  "warm_rebuild_overhead_ms": bb["overhead_s"] * 1e3, "kernels_median_s": bb["kernels"]["median_s"],
                  "hand_median_s": bb["kernels-hand"]["median_s"], "build_script_median_ms": bb["build-script"]["median_s"] * 1e3,
                  "rounds": bb["rounds"], "load_average": bb["load_average"]}))
PY
done
