#!/usr/bin/env bash
# On an H200: tune and measure attention, then SGEMM (H200 entries, measured from disk in the same call),
# then the wgmma correctness sweep; each stage's outputs packed at the top of OUT as soon as it ends.
# On an H100: the sweep only.
. scripts/device-env.sh
OUT=$1; mkdir -p $OUT
pack() { rm -f $OUT/$1/*/*.f16; tar czf $OUT/$1.tgz -C $OUT $1 && rm -rf $OUT/$1; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin $OUT/a > $OUT/a.log 2>&1
  grep -A10 "^| B·H, S, D | ours" $OUT/a.log; pack a
  TUNE_TIMEOUT=120 TUNE_ARGS="--budget 80 --batch 10" bash scripts/device-issue18.sh tune-sgemm .device/bin $OUT/s > $OUT/s.log 2>&1
  grep best $OUT/s/tune-sgemm.err; pack s
  bash scripts/device-issue18.sh measure-sgemm-entries .device/bin $OUT/m > $OUT/m.log 2>&1
  grep -E "sgemm (tuned|cuBLAS|default)" $OUT/m.log | head -5; pack m
fi
t timeout 200 .device/bin/attention_check kernels/autotune 1 > $OUT/check.log 2>&1
tail -8 $OUT/check.log
