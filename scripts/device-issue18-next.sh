#!/usr/bin/env bash
# The next GPU calls for issue 18. Build here first as scripts/device-issue18.sh says (binaries in
# .device/bin, built from this commit), then through the device tool, with carry [".device"] and a 600 s
# limit, one call a stage (each fits in one):
#
#   bash scripts/device-issue18-next.sh any OUT             any Hopper (H100 or H200), about 5 minutes:
#       1. attention_check: every wgmma config, causal and not, at 1024/2048/4096 against the float64
#          reference (the causal configs no run has checked);
#       2. versus: SGEMM 4096³ tuned, default, cuBLAS (TF32 off) and the stream-K prototype in one run,
#          then its 20-launch bitwise repeat check at four grids.
#   bash scripts/device-issue18-next.sh h200-attention OUT  H200 only: tune both flash-attention launchers at
#       every size, then measure the new entries against SDPA from disk;
#   bash scripts/device-issue18-next.sh h200-sgemm OUT      H200 only: tune SGEMM at every size, then the new
#       4096³ entry against cuBLAS, from disk.
#
# Each stage's outputs, its log included, are packed into OUT/<stage>.tgz as it ends: the device tool brings
# back 8 files at most.
. scripts/device-env.sh
MODE=${1:?usage: device-issue18-next.sh any|h200-attention|h200-sgemm OUT}
OUT=${2:?usage: device-issue18-next.sh any|h200-attention|h200-sgemm OUT}
mkdir -p "$OUT"
pack() { rm -f "$OUT/$1"/*/*.f16; tar czf "$OUT/$1.tgz" -C "$OUT" "$1" && rm -rf "${OUT:?}/$1"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
h200() { nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { echo "not an H200: $MODE is for one"; exit 3; }; }
case "$MODE" in
any)
    # A versus built before the prototype would skip it without a word.
    grep -aq "stream-K prototype" .device/bin/versus || { echo ".device/bin/versus predates the stream-K rows: rebuild"; exit 2; }
    mkdir -p "$OUT/c" "$OUT/v"
    t timeout 200 .device/bin/attention_check kernels/autotune 1 >"$OUT/c/check.log" 2>&1
    tail -8 "$OUT/c/check.log"; pack c
    bash scripts/device-issue18.sh versus .device/bin "$OUT/v" >"$OUT/v/run.log" 2>&1
    grep -E "sgemm " "$OUT/v/run.log"; pack v
    ;;
h200-attention)
    h200; mkdir -p "$OUT/a"
    TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin "$OUT/a" >"$OUT/a/run.log" 2>&1
    grep -A10 "^| B·H, S, D | ours" "$OUT/a/run.log"; pack a
    ;;
h200-sgemm)
    h200; mkdir -p "$OUT/s" "$OUT/m"
    TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 10" bash scripts/device-issue18.sh tune-sgemm .device/bin "$OUT/s" >"$OUT/s/run.log" 2>&1
    grep best "$OUT/s/tune-sgemm.err"; pack s
    bash scripts/device-issue18.sh measure-sgemm-entries .device/bin "$OUT/m" >"$OUT/m/run.log" 2>&1
    grep -E "sgemm " "$OUT/m/run.log"; pack m
    ;;
*)
    echo "unknown stage $MODE"; exit 2
    ;;
esac
