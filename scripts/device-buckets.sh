#!/usr/bin/env bash
# Issue 17 on the GPU (docs/benchmarks.md, "Size buckets and device fallback on the H200").
#   scripts/device-buckets.sh fallback-and-tune BIN OUT   (call 1)
#     1. `buckets-h100only fallback`: a binary built when the cache held only the H100 entries, on this
#        GPU: what it picks at every declared size of every kernel, timed beside the default;
#     2. `cargo-autotune tune` of every missing size point on this GPU (warm starts from the other
#        entries), then the cache as it is after it;
#   scripts/device-buckets.sh record BIN OUT              (call 2)
#     3. `cargo-autotune record --sample 400` of SGEMM at the three tuned sizes and two between them;
#   scripts/device-buckets.sh h200 BIN OUT                (on an H200 only: calls 1 and 2 in one)
#   scripts/device-buckets.sh compare BIN OUT RECORDS     (call 3, with binaries rebuilt from the new cache:
#                                                           buckets and run_tuned)
#     4. `buckets compare`: bucketed pick, single-size pick, best of the sample and the default, side by side;
#        `buckets fallback` again, now with this GPU's own entries.
set -uo pipefail
MODE=$1
BIN=${2:-.device/bin}
OUT=${3:-device-out}
mkdir -p "$OUT"
# shellcheck source=scripts/device-env.sh
. "$(dirname "$0")/device-env.sh"
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) $MODE"
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader
SIZES="1024,1024,1024 4096,4096,4096 16384,256,4096 2048,2048,2048 8192,1024,4096"
case "$MODE" in
h200)
    # Only on an H200: elsewhere the fallback question does not arise and the tune would repeat the
    # H100's. Then: fallback, tune, record, as the modes below.
    if ! nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then echo "not an H200: stopping"; exit 3; fi
    "$0" fallback-and-tune "$BIN" "$OUT"
    "$0" record "$BIN" "$OUT"
    ;;
fallback-and-tune)
    echo "== 1. the H100-entries-only binary on this GPU"
    t "$BIN/buckets-h100only" fallback >"$OUT/fallback-h100only.txt" 2>"$OUT/fallback-h100only.err"
    cat "$OUT/fallback-h100only.txt"; tail -3 "$OUT/fallback-h100only.err"
    echo "== 2. tune every missing size point on this GPU"
    t "$BIN/cargo-autotune" tune --manifest-path kernels/Cargo.toml --json >"$OUT/tune.jsonl" 2>"$OUT/tune.err"
    cat "$OUT/tune.err" | grep -v '^\s*$' | tail -40
    tar czf "$OUT/autotune-after.tgz" kernels/autotune
    "$BIN/cargo-autotune" list --manifest-path kernels/Cargo.toml >"$OUT/list.txt" 2>&1
    ;;
record)
    echo "== 3. record 400 sampled SGEMM configs at each size"
    mkdir -p records
    for s in $SIZES; do
        IFS=, read -r m n k <<<"$s"
        t "$BIN/cargo-autotune" record --spec kernels/src/sgemm.rs --size "m=$m" --size "n=$n" --size "k=$k" \
            --sample 400 --seed 1 --out "records/sgemm-${m}x${n}x${k}.json" >>"$OUT/record.jsonl" 2>>"$OUT/record.err"
        tail -1 "$OUT/record.jsonl" | head -c 600; echo
    done
    tar czf "$OUT/records.tgz" records
    ;;
compare)
    RECORDS=${4:-records}
    echo "== 4. bucketed vs single-size vs best of 400 vs default"
    t "$BIN/buckets" compare "$RECORDS" >"$OUT/compare.txt" 2>"$OUT/compare.err"
    cat "$OUT/compare.txt"; tail -3 "$OUT/compare.err"
    echo "== 5. every launcher through KERNEL.plan, checked against a CPU reference"
    t "$BIN/run_tuned" >"$OUT/run-tuned.txt" 2>&1; cat "$OUT/run-tuned.txt"
    echo "== 6. the same binary's picks at every declared size, with this GPU's own entries"
    t "$BIN/buckets" fallback >"$OUT/fallback-own.txt" 2>"$OUT/fallback-own.err"
    cat "$OUT/fallback-own.txt"; tail -3 "$OUT/fallback-own.err"
    ;;
esac
