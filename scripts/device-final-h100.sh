#!/usr/bin/env bash
# Issue 18, last call: the committed cache baked in (built here with AUTOTUNE_OFFLINE=1; binaries in .device/bin): every launcher through KERNEL.plan
# against a CPU reference, then the tensor-core attention through its launcher (no --entries) and SDPA.
. scripts/device-env.sh
export PYTHONUNBUFFERED=1
R=$OUT
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t .device/bin/run_tuned 2>&1 | tee $R/run-tuned.txt
t .device/bin/attention_versus /tmp/attn 2>&1 | tee $R/attention_versus.log
t python3 scripts/attention_sdpa.py /tmp/attn 2>&1 | tee $R/attention_sdpa.log
cp /tmp/attn/*.json $R/
