#!/usr/bin/env bash
# Issue 18 on the GPU (docs/benchmarks.md, "Tensor-core attention and SGEMM on the H200").
# Build here first (no GPU needed), then run from the repository root on the GPU machine:
#
#   cargo build --release -p autotune-kernels --example attention_versus --example run_tuned --example versus \
#       --example attention_check
#   cargo build --release -p tuner-cli --features cuda
#   mkdir -p .device/bin && cp target/release/examples/{attention_versus,run_tuned,versus,attention_check} \
#       target/release/cargo-autotune .device/bin/
#
#   scripts/device-issue18.sh tune-attention BIN OUT   every launcher against a CPU reference (the new
#                                                       kernel's default included), then `cargo autotune
#                                                       tune` of both flash-attention launchers at every size
#   scripts/device-issue18.sh tune-and-measure-attention BIN OUT
#                                                       tune-attention, then the attention measurement
#                                                       against SDPA with the new entries read from disk
#                                                       (`attention_versus --entries`): one call, no rebuild
#   scripts/device-issue18.sh measure-sgemm-entries BIN OUT
#                                                       SGEMM vs cuBLAS with the new 4096³ entry read from disk
#   scripts/device-issue18.sh tune-sgemm BIN OUT       `cargo autotune tune` of SGEMM at every size
#   scripts/device-issue18.sh versus BIN OUT           versus with the entries the binary was built with:
#                                                       SGEMM (and the stream-K prototype) vs cuBLAS
#   scripts/device-issue18.sh measure BIN OUT          with binaries rebuilt from the new entries: attention
#                                                       vs SDPA (scripts/attention_sdpa.py), SGEMM vs cuBLAS
#                                                       (versus), every launcher against the CPU reference
set -uo pipefail
MODE=$1
BIN=${2:-.device/bin}
OUT=${3:-device-out}
MANIFEST=${MANIFEST:-kernels/Cargo.toml}  # the crate whose entries `tune` writes (its autotune/ folder)
mkdir -p "$OUT"
# shellcheck source=scripts/device-env.sh
. "$(dirname "$0")/device-env.sh"
export PYTHONUNBUFFERED=1
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) $MODE"
nvidia-smi --query-gpu=name,driver_version,compute_cap,clocks.max.sm --format=csv,noheader
tune() {  # tune KERNEL...: every missing size of each kernel, the log and the entries after
    for k in "$@"; do
        echo "== cargo autotune tune --kernel $k"
        # shellcheck disable=SC2086
        t timeout "${TUNE_TIMEOUT:-590}" "$BIN/cargo-autotune" tune --manifest-path "$MANIFEST" --kernel "$k" --json ${TUNE_ARGS:-} \
            >>"$OUT/tune-$k.jsonl" 2>"$OUT/tune-$k.err"
        grep -v '^\s*$' "$OUT/tune-$k.err" | tail -12
    done
    tar czf "$OUT/autotune-after.tgz" -C "$(dirname "$MANIFEST")" autotune
}
cublas_path() {  # libcublas from the torch wheel's nvidia packages, for versus
    local dirs
    dirs=$(python3 -c 'import glob,os,nvidia; print(":".join(sorted({os.path.dirname(f) for r in nvidia.__path__ for f in glob.glob(os.path.join(r,"**","libcublas.so*"),recursive=True)})))' 2>/dev/null)
    export LD_LIBRARY_PATH="${dirs}:${LD_LIBRARY_PATH:-}"
}
case "$MODE" in
tune-attention)
    echo "== every launcher through KERNEL.plan against a CPU reference"
    # A wrong default would be the reference every candidate is checked against: no tune then.
    if timeout 120 "$BIN/run_tuned" >"$OUT/run-tuned-before.txt" 2>&1; then
        cat "$OUT/run-tuned-before.txt"
        tune flash_attention_hd64 flash_attention_hd128
    else
        cat "$OUT/run-tuned-before.txt"; echo "run_tuned failed: not tuning"; exit 1
    fi
    ;;
tune-and-measure-attention)
    "$0" tune-attention "$BIN" "$OUT" || exit 1
    echo "== tensor-core attention: the new entries' configs and the default, then SDPA on the same tensors"
    t "$BIN/attention_versus" "$OUT/attn" --entries "$(dirname "$MANIFEST")/autotune" 2>&1 | tee "$OUT/attention_versus.log"
    t python3 scripts/attention_sdpa.py "$OUT/attn" 2>&1 | tee "$OUT/attention_sdpa.log"
    rm -f "$OUT"/attn/*.f16
    ;;
tune-sgemm)
    tune sgemm
    ;;
versus)
    echo "== versus: SGEMM and the stream-K prototype vs cuBLAS (TF32 off), vector add, softmax, attention"
    cublas_path
    NVIDIA_TF32_OVERRIDE=0 t "$BIN/versus" "$OUT/v" 2>&1 | tee "$OUT/versus.log"
    rm -f "$OUT"/v/*.f16
    ;;
measure-sgemm-entries)
    echo "== SGEMM vs cuBLAS (TF32 off) with the new 4096³ entry read from disk, and the other kernels"
    cublas_path
    NVIDIA_TF32_OVERRIDE=0 t "$BIN/versus" "$OUT/v" --entries "$(dirname "$MANIFEST")/autotune" 2>&1 | tee "$OUT/versus.log"
    rm -f "$OUT"/v/*.f16
    ;;
measure)
    echo "== tensor-core attention, tuned and default, then SDPA on the same tensors"
    t "$BIN/attention_versus" "$OUT/attn" 2>&1 | tee "$OUT/attention_versus.log"
    t python3 scripts/attention_sdpa.py "$OUT/attn" 2>&1 | tee "$OUT/attention_sdpa.log"
    rm -f "$OUT"/attn/*.f16
    echo "== versus: SGEMM vs cuBLAS (TF32 off), vector add, softmax, CUDA-core attention"
    cublas_path
    NVIDIA_TF32_OVERRIDE=0 t "$BIN/versus" "$OUT/v" 2>&1 | tee "$OUT/versus.log"
    rm -f "$OUT"/v/*.f16
    echo "== every launcher through KERNEL.plan against a CPU reference"
    t "$BIN/run_tuned" 2>&1 | tee "$OUT/run-tuned.txt"
    ;;
esac
echo "== done $(date -u +%FT%TZ)"
