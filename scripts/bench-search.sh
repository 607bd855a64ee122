#!/usr/bin/env bash
# Regenerates the search-efficiency part of docs/benchmarks.md, docs/plots/search-*.svg and
# docs/plots/search-summary.json: our strategies vs Kernel Tuner's on every recorded table
# (tables/h100/*.json, tests/data/*.json), budgets 20/50/100/200, 30 seeds. No GPU needed.
#
#   scripts/bench-search.sh                 # the full run (about 10-15 minutes on 2 cores)
#   scripts/bench-search.sh --seeds 5       # a quick look (any option of scripts/bench_search.py)
#
# Environment: BENCH_VENV (default .venv-bench, git-ignored) is the Python environment with
# kernel_tuner and matplotlib; it is created on first use. CARGO_TARGET_DIR is honoured; BENCH_BIN
# names a cargo-autotune binary to use instead of building one (BENCH_BIN_COMMIT: the commit it was
# built from, for the doc).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${BENCH_VENV:-.venv-bench}
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import kernel_tuner, matplotlib, sklearn' 2>/dev/null; then
    echo "bench-search: creating $VENV (kernel_tuner, matplotlib, scikit-learn)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'kernel_tuner==1.5.0' 'matplotlib>=3.8' 'scikit-learn>=1.3'
fi

start=$(date +%s)
if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN=$BENCH_BIN  # a cargo-autotune built already (e.g. while the tree does not build)
else
    echo "bench-search: cargo build --release -p tuner-cli" >&2
    cargo build --release --quiet -p tuner-cli --bin cargo-autotune
    BIN="${CARGO_TARGET_DIR:-target}/release/cargo-autotune"
fi
export BENCH_BUILD_SECONDS=$(( $(date +%s) - start ))

exec "$VENV/bin/python" scripts/bench_search.py --bin "$BIN" --command-line "scripts/bench-search.sh${*:+ $*}" "$@"
