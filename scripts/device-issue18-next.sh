#!/usr/bin/env bash
# The next GPU call for issue 18, whole: build here as scripts/device-issue18.sh says (binaries in
# .device/bin), then through the device tool, with carry [".device"] and a 600 s limit:
#
#   bash scripts/device-issue18-next.sh $OUT
#
# What any Hopper answers comes first, then what only an H200 can:
#   1. attention_check: every wgmma config, causal and not, at 1024/2048/4096 against the float64 reference
#      (the causal configs no run has checked);
#   2. versus: SGEMM 4096³ tuned, default, cuBLAS (TF32 off) and the stream-K prototype in one run;
#   3. on an H200 only: tune both flash-attention launchers and measure them against SDPA from disk, tune
#      SGEMM at every size and measure the new 4096³ entry against cuBLAS.
# Each stage's outputs are packed into OUT/<stage>.tgz as it ends (the tool brings back 8 files at most).
. scripts/device-env.sh
OUT=${1:?usage: device-issue18-next.sh OUT}
mkdir -p "$OUT"
pack() { rm -f "$OUT/$1"/*/*.f16; tar czf "$OUT/$1.tgz" -C "$OUT" "$1" && rm -rf "${OUT:?}/$1"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
mkdir -p "$OUT/c"
t timeout 200 .device/bin/attention_check kernels/autotune 1 >"$OUT/c/check.log" 2>&1
tail -8 "$OUT/c/check.log"; pack c
bash scripts/device-issue18.sh versus .device/bin "$OUT/v" >"$OUT/v.log" 2>&1
grep -E "sgemm " "$OUT/v.log"; pack v
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
    TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin "$OUT/a" >"$OUT/a.log" 2>&1
    grep -A10 "^| B·H, S, D | ours" "$OUT/a.log"; pack a
    TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 10" bash scripts/device-issue18.sh tune-sgemm .device/bin "$OUT/s" >"$OUT/s.log" 2>&1
    grep best "$OUT/s/tune-sgemm.err"; pack s
    bash scripts/device-issue18.sh measure-sgemm-entries .device/bin "$OUT/m" >"$OUT/m.log" 2>&1
    grep -E "sgemm " "$OUT/m.log"; pack m
fi
