#!/usr/bin/env bash
# One config per model round vs batches of 10 on the H100: tune_cost sgemm 100, seeds 0..2.
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for seed in 0 1 2; do
  for pop in 20 1; do
    AUTOTUNE_SEED=$seed AUTOTUNE_POPULATION=$pop timeout 250 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
    echo "seed $seed pop $pop exit $?" >> "$OUT/stderr.log"
  done
done
