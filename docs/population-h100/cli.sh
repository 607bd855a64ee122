#!/usr/bin/env bash
# The shipped CLI (cargo-autotune built with --features cli,cuda at the commit named in docs) tuning SGEMM
# with the default (one config per round, background compile) and with --batch 10, seed 0, budget 100.
set -u
OUT=${1:?OUTDIR}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv; nproc; } > "$OUT/gpu.txt" 2>&1
for batch in default 10; do
  extra=(); [ "$batch" = default ] || extra=(--batch "$batch")
  s=$(date +%s.%N)
  .device/popbench/cargo-autotune tune --manifest-path kernels/Cargo.toml --kernel sgemm --force --budget 100 \
    --seed 0 --devices 0 --cache-dir "$OUT/entries-$batch" --json -v "${extra[@]}" > "$OUT/cli-$batch.json" 2> "$OUT/cli-$batch.log"
  echo "batch $batch exit $? wall_s $(python3 -c "import time; print(round(time.time() - $s, 2))")" >> "$OUT/summary.txt"
done
