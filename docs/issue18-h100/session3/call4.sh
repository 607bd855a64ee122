#!/usr/bin/env bash
# Probe (every wgmma config at seq 2048, the helper's SGEMM configs at 4096³), then the attention and SGEMM
# tunes with their measurements.
. scripts/device-env.sh
OUT=$1; mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for hd in 64 128; do
  t timeout 150 .device/bin/cargo-autotune record --spec kernels/src/flash_attention.rs --kernel flash_attention_hd$hd \
    --out $OUT/rec_hd${hd}.json --from .device/probe/wgmma_hd$hd.json --top 300 --size seq=2048 > $OUT/rec_hd${hd}.log 2>&1
done
t timeout 100 .device/bin/cargo-autotune record --spec kernels/src/sgemm.rs --kernel sgemm \
    --out $OUT/rec_sgemm.json --from .device/probe/sgemm.json --top 300 > $OUT/rec_sgemm.log 2>&1
python3 .device/probe/show.py $OUT
TUNE_TIMEOUT=150 TUNE_ARGS="--budget 80 --batch 8" bash scripts/device-issue18.sh tune-and-measure-attention .device/bin $OUT/attn > $OUT/attn.log 2>&1
grep -A12 "^| B·H" $OUT/attn.log | head -14
TUNE_TIMEOUT=150 TUNE_ARGS="--budget 80 --batch 10" bash scripts/device-issue18.sh tune-sgemm .device/bin $OUT/sg > $OUT/sg.log 2>&1
tail -5 $OUT/sg.log
bash scripts/device-issue18.sh measure-sgemm-entries .device/bin $OUT/sgm > $OUT/sgm.log 2>&1
grep -i "sgemm\|cublas" $OUT/sgm.log | head -12
