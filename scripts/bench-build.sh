#!/usr/bin/env bash
# Warm-cache `cargo build` of `kernels` (with #[autotune], its build script and build-dependency) vs the
# same crate with hand-written constants (issue 6, docs/benchmarks.md "Cost"). No GPU needed.
#
# In a temporary copy of the workspace it adds `kernels-hand`: a copy of kernels/ without build.rs and the
# build-dependency, where each `#[autotune(...)]` is replaced by what the macro expands to
# (tuner-macro/src/expand.rs): the `<fn>_tuning` module with the generated `$OUT_DIR/autotune/<fn>.rs`
# pasted in as source (the `Tuned` struct, its constants and the per-GPU entries) and the lazily compiled
# `Kernel`, and the `TUNED` / `KERNEL` bindings at the top of the launcher. That is what a user without
# autotune would write. Both crates build the same dependencies into one target directory.
#
# Then, alternating the two, ROUNDS times each: touch a source file of the crate (src/vector_add.rs) and
# time `cargo build` (debug, the default profile; --offline). Prints each crate's median, min and max and
# the overhead (median ratio - 1) as JSON on the last line.
#
#   scripts/bench-build.sh [ROUNDS]        # default 15; CARGO_BUILD_JOBS is respected
#   CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL=3 scripts/bench-build.sh 21   # build scripts and macros optimised
#   SEED_TARGET=/path/to/target scripts/bench-build.sh   # start from a copy of that target's debug/ (only
#                                                        # saves building the dependencies the first time)
set -euo pipefail
ROUNDS=${1:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/bench-build.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
WS=$TMP/ws
export CARGO_TARGET_DIR=$TMP/target
# A plain `cargo build`: no AUTOTUNE_OFFLINE, so the build script looks for a GPU as a user's build does
# (on a machine without one that fails fast; the committed cache entries cover every kernel anyway).

mkdir -p "$WS" "$CARGO_TARGET_DIR"
if [ -n "${SEED_TARGET:-}" ] && [ -d "$SEED_TARGET/debug" ]; then cp -r "$SEED_TARGET/debug" "$CARGO_TARGET_DIR/"; fi
(cd "$ROOT" && tar --exclude=./target --exclude=./.git --exclude=./.device --exclude=./.whl --exclude=./.gl \
  --exclude='./docs/plots' --exclude='./tables' -cf - .) | (cd "$WS" && tar -xf -)

# 1. Build the autotune crate once to get the generated files.
(cd "$WS" && cargo build --offline -q -p autotune-kernels)
GEN=$(ls -d "$CARGO_TARGET_DIR"/debug/build/autotune-kernels-*/out/autotune | head -1)

# 2. The hand-written variant.
cp -r "$WS/kernels" "$WS/kernels-hand"
python3 - "$WS" "$GEN" <<'EOF'
import os, re, sys
ws, gen = sys.argv[1], sys.argv[2]
hand = os.path.join(ws, "kernels-hand")
os.remove(os.path.join(hand, "build.rs"))
toml = open(os.path.join(hand, "Cargo.toml")).read()
toml = toml.replace('name = "autotune-kernels"', 'name = "autotune-kernels-hand"')
# Drop a whole section: its header and every line up to the next header.
section = lambda name: re.compile(r"^\[" + name + r"\]\n(?:(?!\[).*\n?)*", re.M)
toml = section("build-dependencies").sub("", toml)
toml = re.sub(r"tuner-macro\.workspace = true\n", "", toml)
toml = section("dev-dependencies").sub("", toml)
open(os.path.join(hand, "Cargo.toml"), "w").write(toml)
# Examples and e2e need the macro crate; the library is what is compared.
for d in ("examples", "e2e", "autotune"):
    p = os.path.join(hand, d)
    if os.path.isdir(p):
        import shutil; shutil.rmtree(p)
root_toml = os.path.join(ws, "Cargo.toml")
t = open(root_toml).read()
t = re.sub(r'members\s*=\s*\[', 'members = ["kernels-hand", ', t, count=1)
open(root_toml, "w").write(t)
src = os.path.join(hand, "src")
os.makedirs(os.path.join(src, "tuned"), exist_ok=True)
done = 0
for f in sorted(os.listdir(src)):
    path = os.path.join(src, f)
    if not f.endswith(".rs"):
        continue
    text = open(path).read()
    i = text.find("#[autotune(")
    if i < 0:
        continue
    # The attribute ends at the ')' matching its '(' and the following ']'.
    depth, j = 0, i + len("#[autotune")
    while True:
        c = text[j]
        depth += c == "("
        depth -= c == ")"
        j += 1
        if depth == 0:
            break
    assert text[j] == "]"
    attr = text[i:j + 1]
    m = re.search(r'kernel\s*=\s*"([^"]+)"', attr); kernel = m.group(1)
    m = re.search(r'entry\s*=\s*"([^"]+)"', attr); entry = m.group(1)
    rest = text[j + 1:]
    m = re.search(r"(pub(?:\([^)]*\))?\s+)?fn\s+(\w+)", rest)
    vis, name = (m.group(1) or "").strip(), m.group(2)
    generated = open(os.path.join(gen, f"{name}.rs")).read()
    open(os.path.join(src, "tuned", f"{name}.rs"), "w").write(generated)
    module = f'''/// Tuned configs and the kernel of [`{name}`], written by hand (constants from `cargo autotune`).
#[allow(dead_code)]
{vis} mod {name}_tuning {{
    include!("tuned/{name}.rs");

    /// The kernel source, embedded at compile time.
    pub const SOURCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", "{kernel}"));
    /// The kernel's `extern "C" __global__` entry point.
    pub const ENTRY: &str = "{entry}";
    /// The kernel, compiled with NVRTC and the tuned `-D` values at its first launch.
    pub static KERNEL: ::tuner_runtime::__private::Kernel =
        ::tuner_runtime::__private::Kernel::new("{name}", "{kernel.split('/')[-1]}", SOURCE, ENTRY, params);

    fn params() -> ::std::vec::Vec<(&'static str, ::tuner_runtime::__private::Value)> {{
        ::std::vec::Vec::from(tuned().params())
    }}
}}
'''
    body = rest.index("{", m.end())
    bindings = (f"\n    #[allow(non_snake_case, unused_variables)]\n    let TUNED: &'static {name}_tuning::Tuned = {name}_tuning::tuned();"
                f"\n    #[allow(non_snake_case, unused_variables)]\n    let KERNEL: &'static ::tuner_runtime::__private::Kernel = &{name}_tuning::KERNEL;")
    rest = rest[:body + 1] + bindings + rest[body + 1:]
    text = text[:i] + module + rest.lstrip("\n")
    text = text.replace("use tuner_macro::autotune;\n", "").replace("use tuner_runtime::autotune;\n", "")
    open(path, "w").write(text)
    done += 1
print(f"kernels-hand: {done} launchers written out by hand", file=sys.stderr)
EOF
(cd "$WS" && cargo build --offline -q -p autotune-kernels-hand)
# The hand-written crate's tuned configs must be the autotune crate's.
diff <(cat "$GEN"/*.rs) <(cat "$WS"/kernels-hand/src/tuned/*.rs) >/dev/null
(cd "$WS" && cargo build --offline -q -p autotune-kernels -p autotune-kernels-hand)

# 3. Alternate: touch, build, time.
: > "$TMP/times"
for r in $(seq 1 "$ROUNDS"); do
  for v in kernels kernels-hand; do
    pkg=autotune-kernels; [ "$v" = kernels-hand ] && pkg=autotune-kernels-hand
    touch "$WS/$v/src/vector_add.rs"
    s=$(date +%s.%N)
    (cd "$WS" && cargo build --offline -q -p "$pkg" 2>/dev/null)
    e=$(date +%s.%N)
    echo "$v $(echo "$e - $s" | bc)" >> "$TMP/times"
  done
done
# The build script alone, run as cargo runs it (same environment, its own OUT_DIR), ROUNDS times.
SCRIPT=$(ls -t "$CARGO_TARGET_DIR"/debug/build/autotune-kernels-*/build-script-build | head -1)
mkdir -p "$TMP/out"
for r in $(seq 1 "$ROUNDS"); do
  s=$(date +%s.%N)
  (cd "$WS/kernels" && CARGO_MANIFEST_DIR="$WS/kernels" OUT_DIR="$TMP/out" "$SCRIPT" >/dev/null 2>&1)
  e=$(date +%s.%N)
  echo "build-script $(echo "$e - $s" | bc)" >> "$TMP/times"
done
python3 - "$TMP/times" "$ROUNDS" <<'EOF'
import json, statistics, sys, os
rows = [l.split() for l in open(sys.argv[1])]
t = {v: sorted(float(s) for k, s in rows if k == v) for v in ("kernels", "kernels-hand", "build-script")}
out = {"rounds": int(sys.argv[2]), "jobs": os.environ.get("CARGO_BUILD_JOBS", str(os.cpu_count())),
       "command": "touch src/vector_add.rs && cargo build --offline -p <crate>  (debug, warm)",
       "load_average": open("/proc/loadavg").read().split()[:3]}
for v, ts in t.items():
    out[v] = {"median_s": statistics.median(ts), "min_s": ts[0], "max_s": ts[-1], "all_s": ts}
    print(f"{v:>13}: median {statistics.median(ts):.3f} s  min {ts[0]:.3f}  max {ts[-1]:.3f}  ({len(ts)} builds)")
out["ratio"] = out["kernels"]["median_s"] / out["kernels-hand"]["median_s"]
out["overhead_pct"] = (out["ratio"] - 1) * 100
out["overhead_s"] = out["kernels"]["median_s"] - out["kernels-hand"]["median_s"]
print(f"autotune / hand-written: {out['ratio']:.3f} (overhead {out['overhead_pct']:+.1f}%, "
      f"{out['overhead_s'] * 1e3:+.0f} ms, target <= 5%); the build script alone: "
      f"{out['build-script']['median_s'] * 1e3:.0f} ms median; load average {' '.join(out['load_average'])}")
print(json.dumps(out))
EOF
