#!/usr/bin/env bash
# The GPU half of docs/benchmarks.md in one call on the GPU machine (issue 6): the kernels against
# memcpy / cuBLAS / PyTorch SDPA, then where the time of a 100-evaluation SGEMM tune goes.
#
# Build here first (no GPU needed), then run this from the repository root on the GPU machine:
#
#   CARGO_TARGET_DIR=/work/targets/gpubench cargo build --release -p autotune-kernels --example versus --example tune_cost
#   mkdir -p .device/gpubench && cp $CARGO_TARGET_DIR/release/examples/{versus,tune_cost} .device/gpubench/
#   cp <a cargo-autotune built with --features cli,cuda> .device/gpubench/      # optional: the CLI's own wall time
#   scripts/versus-device.sh OUTDIR
#
# Needs python3 with torch (the SDPA side) and libcublas (found through the torch wheel's nvidia-cublas
# or /usr/local/cuda). Writes OUTDIR/{gpu.txt,versus.log,sdpa.log,tune_cost.json,tune_cli.log} and
# OUTDIR/v/{versus.json,versus_sdpa.json}.
set -uo pipefail
OUT=${1:?OUTDIR}
BIN=${BIN:-.device/gpubench}
mkdir -p "$OUT/v"
export PYTHONUNBUFFERED=1
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,temperature.gpu,power.draw \
    --format=csv; nproc; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } 2>&1 | tee "$OUT/gpu.txt"
# Every folder holding libcublas.so*: the torch wheels' nvidia packages first, then the CUDA toolkit.
CUBLAS_LIB=$(python3 - <<'EOF' 2>/dev/null
import glob, os
dirs = []
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
for root in roots + glob.glob("/usr/local/cuda*"):
    for f in glob.glob(os.path.join(root, "**", "libcublas.so*"), recursive=True):
        d = os.path.dirname(f)
        if d not in dirs and "stubs" not in d:
            dirs.append(d)
print(":".join(dirs))
EOF
)
export LD_LIBRARY_PATH="${CUBLAS_LIB}:${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" | tee -a "$OUT/gpu.txt"

echo "== versus (kernels vs memcpy / cuBLAS, tuned vs default)"
# TF32 off for cuBLAS in every way it can be asked for (the binary also sets the math mode explicitly).
NVIDIA_TF32_OVERRIDE=0 "$BIN/versus" "$OUT/v" 2>&1 | tee "$OUT/versus.log"
echo "versus exit ${PIPESTATUS[0]}"

echo "== SDPA on the same attention inputs"
python3 scripts/versus_sdpa.py "$OUT/v" 2>&1 | tee "$OUT/sdpa.log"
rm -f "$OUT"/v/attn_*.f16

echo "== 100-evaluation SGEMM tune, split (default strategy, no LLM endpoint reachable from this machine)"
"$BIN/tune_cost" sgemm 100 2>&1 | tee "$OUT/tune_cost.json"
if [ -x "$BIN/cargo-autotune" ]; then
  echo "== the same through the CLI: cargo autotune tune --kernel sgemm --force --budget 100"
  s=$(date +%s.%N)
  "$BIN/cargo-autotune" tune --manifest-path kernels/Cargo.toml --kernel sgemm --force --budget 100 \
    --cache-dir /tmp/tune-cli --json 2>&1 | tee "$OUT/tune_cli.log"
  echo "cli wall_s $(echo "$(date +%s.%N) - $s" | bc 2>/dev/null || python3 -c "import time; print(time.time() - $s)")" | tee -a "$OUT/tune_cli.log"
fi
echo "== done"
