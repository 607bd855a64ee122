#!/usr/bin/env bash
# Second call: populations 1, 4 and 20 on seeds 3..5, and 4 on seeds 0..2 (tune_cost sgemm 100).
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for seed in 3 4 5; do
  for pop in 20 4 1; do
    AUTOTUNE_SEED=$seed AUTOTUNE_POPULATION=$pop timeout 200 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
    echo "seed $seed pop $pop exit $?" >> "$OUT/stderr.log"
  done
done
for seed in 0 1 2; do
  AUTOTUNE_SEED=$seed AUTOTUNE_POPULATION=4 timeout 200 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
  echo "seed $seed pop 4 exit $?" >> "$OUT/stderr.log"
done
