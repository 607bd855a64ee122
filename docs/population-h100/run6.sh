#!/usr/bin/env bash
# Call 6: batches of 10 (AUTOTUNE_BATCH=10) with tune_cost built at 3adbce1, where the bench compiles
# ahead only beside batches of at most half the cores (so not here), seeds 0..5 (tune_cost sgemm 100).
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for seed in 0 1 2 3 4 5; do
  AUTOTUNE_SEED=$seed AUTOTUNE_BATCH=10 timeout 150 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
  echo "seed $seed batch 10 exit $?" >> "$OUT/stderr.log"
done
