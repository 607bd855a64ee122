#!/usr/bin/env bash
# The GPU paths after the crate split and the reliability fixes (issues 16, 19), on a CUDA machine:
#   1. the kernels crate's build script (built here: `cargo build --release -p autotune-kernels`), run as
#      Cargo runs it, with AUTOTUNE_WORKER=1 inherited: it must tune the misses (its own worker, by
#      argument), write entries and generated code; run again, it must replay its digest at once;
#   2. `cargo-autotune tune` of one kernel (the CLI as worker);
#   3. `tune --kernel <typo>` and `tune` into an unwritable cache: errors before any GPU work.
#   scripts/device-split.sh BIN_DIR OUT
set -uo pipefail
BIN=${1:-.device/bin}
OUT=${2:-device-out}
mkdir -p "$OUT"
# shellcheck source=scripts/device-env.sh
. "$(dirname "$0")/device-env.sh"
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

echo "== 1. the build script tunes its misses, AUTOTUNE_WORKER=1 inherited"
mkdir -p "$OUT/build-out" "$OUT/build-cache"
run_script() {
    (cd kernels && AUTOTUNE_WORKER=1 AUTOTUNE_MAX_EVALUATIONS=${1} AUTOTUNE_CACHE_DIR="$PWD/../$OUT/build-cache" \
        CARGO_MANIFEST_DIR="$PWD" OUT_DIR="$PWD/../$OUT/build-out" "../$BIN/kernels-build-script" \
        >"../$OUT/directives-$2.txt" 2>"../$OUT/build-stderr-$2.txt")
}
t run_script 12 first
grep -c '^cargo::' "$OUT/directives-first.txt"; grep 'warning=' "$OUT/directives-first.txt"; tail -5 "$OUT/build-stderr-first.txt"
ls "$OUT/build-cache" "$OUT/build-out/autotune"
echo "-- again, nothing changed: the digest replays"
t run_script 12 second
cmp "$OUT/directives-first.txt" "$OUT/directives-second.txt" && echo "same directives"; cat "$OUT/build-stderr-second.txt"

echo "== 2. cargo-autotune tune --kernel vector_add"
t "$BIN/cargo-autotune" tune --manifest-path kernels/Cargo.toml --kernel vector_add --budget 12 --cache-dir "$PWD/$OUT/cli-cache" --json
ls "$OUT/cli-cache"

echo "== 3. errors before any GPU work"
t "$BIN/cargo-autotune" tune --manifest-path kernels/Cargo.toml --kernel vectr_add
touch "$OUT/a-file"
t "$BIN/cargo-autotune" tune --manifest-path kernels/Cargo.toml --cache-dir "$PWD/$OUT/a-file/cache"
