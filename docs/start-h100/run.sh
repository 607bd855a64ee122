#!/usr/bin/env bash
# The search starting from the kernel's default (tune_kernel makes it the first trial), SGEMM 4096³ on
# the H100, default settings (surrogate, one config per model round, background compile), 100
# evaluations, seeds FIRST..LAST (tune_cost sgemm 100, built at the commit named in docs/benchmarks.md).
# Usage: run.sh OUTDIR FIRST LAST
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for seed in $(seq "${2:-0}" "${3:-5}"); do
  AUTOTUNE_SEED=$seed timeout 150 .device/popbench/tune_cost sgemm 100 >> "$OUT/tune_cost.jsonl" 2>> "$OUT/stderr.log"
  echo "seed $seed exit $?" >> "$OUT/stderr.log"
done
