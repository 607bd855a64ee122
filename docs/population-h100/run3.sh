#!/usr/bin/env bash
# Calls 3, 4 and 5 (results run3.jsonl, run4.jsonl, run5.jsonl): the default (one config per round) and
# AUTOTUNE_BATCH=10, both with the background compile of the surrogate's runners-up
# (Objective::prefetch), seeds 0..5 (tune_cost sgemm 100). Each call ran this script with tune_cost
# built at a different commit: 1e41574, 87d60bc and bc9ec84.
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for seed in 0 1 2 3 4 5; do
  for batch in 1 10; do
    AUTOTUNE_SEED=$seed AUTOTUNE_BATCH=$batch timeout 150 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
    echo "seed $seed batch $batch exit $?" >> "$OUT/stderr.log"
  done
done
