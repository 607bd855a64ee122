#!/usr/bin/env bash
# Probe every wgmma config at seq 2048 (128-byte swizzle), then the attention tune and its measurement.
. scripts/device-env.sh
OUT=$1; mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for hd in 64 128; do
  t timeout 150 .device/bin/cargo-autotune record --spec kernels/src/flash_attention.rs --kernel flash_attention_hd$hd \
    --out $OUT/rec_hd${hd}.json --from .device/probe/wgmma_hd$hd.json --top 300 --size seq=2048 > $OUT/rec_hd${hd}.log 2>&1
done
python3 .device/probe/show.py $OUT
TUNE_TIMEOUT=150 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin $OUT/attn > $OUT/attn.log 2>&1
grep -A30 "^| B·H" $OUT/attn.log | head -32
