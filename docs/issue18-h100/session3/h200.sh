#!/usr/bin/env bash
# On an H200 only: tune both flash launchers and SGEMM at every size (H200 entries), then measure attention
# against SDPA and SGEMM against cuBLAS with the new entries read from disk, in the same call.
. scripts/device-env.sh
OUT=$1; mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { echo "not an H200"; exit 3; }
TUNE_TIMEOUT=150 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin $OUT/attn > $OUT/attn.log 2>&1
grep -A10 "^| B·H, S, D | ours" $OUT/attn.log
TUNE_TIMEOUT=150 TUNE_ARGS="--budget 80 --batch 10" bash scripts/device-issue18.sh tune-sgemm .device/bin $OUT/sg > $OUT/sg.log 2>&1
grep "best" $OUT/sg/tune-sgemm.err
bash scripts/device-issue18.sh measure-sgemm-entries .device/bin $OUT/sgm > $OUT/sgm.log 2>&1
grep -E "sgemm (tuned|cuBLAS|default)" $OUT/sgm.log | head -5
