#!/usr/bin/env bash
# End-to-end check of the GPU path on a CUDA machine: independent kernel checks, planted failures, and the
# recorded tables for every kernel. Run from the repository root on the GPU box:
#
#   cargo build --release -p tuner-cli --features cuda     # here or on any x86-64 Linux box
#   scripts/device-e2e.sh [STAGE] [BIN] [OUT]
#
# STAGE: `smoke` (kernel checks, planted failures, vector add, and `compile`: NVRTC timings), `tables` (`softmax` and `attention`, also
# stages of their own), `sgemm` (SGEMM
# at 2048^3, its top configs at 4096^3, the best configs re-checked and cuBLAS timed), or `all` (default);
# the device tool allows 10 minutes a command, so the stages fit one call each. BIN defaults to
# target/release/cargo-autotune, OUT to e2e-out/. Everything is logged to OUT/e2e-<stage>.log; tables and
# their .meta.json summaries land in OUT/. The last lines print a per-kernel summary.
set -uo pipefail
STAGE=${1:-all}
BIN=${2:-target/release/cargo-autotune}
OUT=${3:-e2e-out}
mkdir -p "$OUT"
LOG="$OUT/e2e-$STAGE.log"
: >"$LOG"
log() { echo "$@" | tee -a "$LOG"; }
run() {
    log "\$ $*"
    "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    log "(exit $rc)"
    return $rc
}

# NVRTC and the driver are loaded at run time; make the usual CUDA library folders visible.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done

log "== device-e2e $STAGE, $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
run nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
log "nproc: $(nproc)"

if [ "$STAGE" = smoke ] || [ "$STAGE" = all ]; then
    log "== independent kernel checks (CuPy/NVRTC vs float64 PyTorch)"
    run python3 scripts/check_kernels.py
    log "== planted failures: wrong output, a kernel that never finishes, an illegal address (timeout 4 s)"
    run "$BIN" record --spec kernels/e2e/planted.rs --out "$OUT/planted.json" --timeout 4
    log "== vector add: the whole space"
    run "$BIN" record --spec kernels/src/vector_add.rs --out "$OUT/vector_add.json" --compile-speedup 32
fi

if [ "$STAGE" = compile ] || [ "$STAGE" = smoke ] || [ "$STAGE" = all ]; then
    log "== NVRTC alone (no GPU work): per-config compile time and the parallel speed-up, each sample compiled cold"
    run "$BIN" record --spec kernels/src/sgemm.rs --out "$OUT/unused.json" --compile-only --sample 256 --compile-speedup 32
    run "$BIN" record --spec kernels/src/attention.rs --out "$OUT/unused.json" --compile-only --compile-speedup 16
fi

if [ "$STAGE" = softmax ] || [ "$STAGE" = tables ] || [ "$STAGE" = all ]; then
    log "== softmax: the whole space"
    run "$BIN" record --spec kernels/src/softmax.rs --out "$OUT/softmax.json" --compile-speedup 32
fi

if [ "$STAGE" = attention ] || [ "$STAGE" = tables ] || [ "$STAGE" = all ]; then
    log "== attention: the whole space"
    run "$BIN" record --spec kernels/src/attention.rs --out "$OUT/attention.json" --compile-speedup 8
fi

if [ "$STAGE" = sgemm ] || [ "$STAGE" = all ]; then
    log "== SGEMM at 2048^3: a sample of the space"
    run "$BIN" record --spec kernels/src/sgemm.rs --out "$OUT/sgemm.json" --size m=2048 --size n=2048 --size k=2048 \
        --sample "${SGEMM_SAMPLE:-2200}" --compile-speedup 16 --timeout 5
    log "== SGEMM at 4096^3: the 16 fastest configs of the 2048^3 table"
    run "$BIN" record --spec kernels/src/sgemm.rs --out "$OUT/sgemm_4096_top.json" --from "$OUT/sgemm.json" --top 16
    log "== independent check of each table's best config, and cuBLAS SGEMM at 4096^3"
    run python3 scripts/check_kernels.py "$OUT"/*.json
fi

log "== summary"
python3 - "$OUT" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys, glob
for path in sorted(glob.glob(sys.argv[1] + "/*.meta.json")):
    m = json.load(open(path))
    best, worst = m.get("best") or {}, m.get("worst_valid") or {}
    pc = m.get("parallel_compile") or {}
    thr = best.get("TFLOP/s") or best.get("GB/s")
    unit = "TFLOP/s" if best.get("TFLOP/s") else "GB/s"
    print(f"{m['kernel']:10s} {path.split('/')[-1]:28s} evaluated {m['evaluated']:5d} valid {m['valid']:5d} failures {m['failures']}")
    if best:
        rate = f" ({thr:.1f} {unit})" if thr else ""
        print(f"  best {best['time_ms']:.4f} ms{rate} {json.dumps(best['config'])}")
        print(f"  worst valid {worst['time_ms']:.4f} ms; worst/best {m['best_worst_ratio']:.1f}x; best vs reference {m['speedup_over_reference']:.2f}x")
    print(f"  NVRTC per config: mean {m['compile_ms']['mean']:.0f} ms, median {m['compile_ms']['median'] or 0:.0f} ms; "
          f"seconds per evaluation {m['seconds_per_evaluation']:.3f}; workers {m['workers']}")
    if pc:
        print(f"  parallel compile: {pc['configs']} configs in {pc['one_thread_ms']:.0f} ms in 1 process, "
              f"{pc['all_threads_ms']:.0f} ms in {pc['threads']} processes = {pc['speedup']:.1f}x")
PY
log "== done"
