//! The kernels' CUDA sources, unchanged, run on the CPU through `tests/cpu/cuda_cpu.h` (one OS thread per CUDA
//! thread) and are checked against float64 references: every committed entry's config that has no inline
//! PTX, each default, and configs picked to reach the code paths the entries do not. A GPU is not needed,
//! so CI checks what it can of a kernel's indexing before a tune ever runs it.
//!
//! Each run compiles a small driver (`tests/cpu/<kernel>.cpp`) with the config's `-D` defines, as NVRTC
//! gets them, and reads its one line: `checked=N bad=N max_err=E`. Every config runs under the address
//! sanitizer (a read or write past a buffer fails the run); the entries and defaults of the kernels with
//! shared memory run again under the thread sanitizer, where a missing `__syncthreads` is a data race
//! between the block's threads, and where the shared arrays are poisoned before each block, so that a read
//! of shared memory no thread wrote comes out NaN.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A config as the kernel's `-D` defines see it: parameter name to value.
type Config = BTreeMap<String, i64>;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a driver printed.
#[derive(Debug)]
struct Outcome {
    checked: usize,
    bad: usize,
    max_err: f64,
    /// Counters left raised (the stream-K driver only).
    raised: Option<usize>,
    /// Whether the driver exited 0 (every output right), and what it wrote to stderr (a sanitizer's report).
    success: bool,
    stderr: String,
}

/// The sanitizer a driver is built with.
#[derive(Clone, Copy, Debug)]
enum Sanitizer {
    /// Reads and writes past a buffer.
    Address,
    /// Data races between the threads of a block (a missing barrier); the shared arrays are poisoned.
    Thread,
}

/// Compiles `tests/cpu/<driver>.cpp` with `config`'s defines under `sanitizer`, runs it with `args` and
/// reads its outcome.
fn run(driver: &str, config: &Config, args: &[i64], sanitizer: Sanitizer) -> Outcome {
    let defines: Vec<String> = config.iter().map(|(k, v)| format!("-D{}={v}", k.to_uppercase())).collect();
    // A name of its own per run: tests run in parallel and may build the same driver and config.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{driver}-{sanitizer:?}-{run}-{}", defines.join("").replace(['-', '='], "_"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("on_cpu").join(name);
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let cpu = manifest_dir().join("tests/cpu");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let compiled = Command::new(&cxx)
        // The kernels read floats through float4 pointers, which C++'s aliasing rules do not allow.
        .args(["-std=c++20", "-O1", "-pthread", "-fno-strict-aliasing", "-Wno-attributes"])
        .args(match sanitizer {
            Sanitizer::Address => ["-fsanitize=address", "-fno-omit-frame-pointer"],
            // `__threadfence` is a fence the thread sanitizer does not model: the blocks that use one run
            // in turn here, so nothing depends on it.
            Sanitizer::Thread => ["-fsanitize=thread", "-Wno-tsan"],
        })
        .arg(format!("-I{}", cpu.display()))
        .args(&defines)
        .arg(cpu.join(format!("{driver}.cpp")))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler `{cxx}` (set CXX to one): {e}"));
    assert!(
        compiled.status.success(),
        "{driver} with {defines:?} did not compile:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    // The drivers never free their buffers; leaks are not what this looks for.
    let ran = Command::new(&exe)
        .args(args.iter().map(i64::to_string))
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .env("TSAN_OPTIONS", "halt_on_error=1")
        .output()
        .unwrap();
    // The sanitized binaries are megabytes each, and no later run uses one.
    std::fs::remove_file(&exe).unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
    let field = |key: &str| -> Option<&str> {
        stdout.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    // A run the sanitizer stopped prints nothing: its outcome is a failure with nothing checked.
    let success = ran.status.success();
    let number = |key: &str| -> f64 {
        match field(key) {
            Some(v) => v.parse().unwrap(),
            None if !success => 0.0,
            None => panic!("{driver} {args:?} with {defines:?} printed no `{key}`: {stdout:?}"),
        }
    };
    let outcome = Outcome {
        checked: number("checked") as usize,
        bad: number("bad") as usize,
        max_err: number("max_err"),
        raised: field("raised").map(|v| v.parse().unwrap()),
        success,
        stderr,
    };
    eprintln!("{driver} {args:?} {defines:?}: {outcome:?}");
    outcome
}

/// Runs and asserts that every one of `expected` outputs was written and right.
fn check(driver: &str, config: &Config, args: &[i64], expected: usize) {
    check_under(driver, config, args, expected, Sanitizer::Address);
}

/// `check` under `sanitizer`.
fn check_under(driver: &str, config: &Config, args: &[i64], expected: usize, sanitizer: Sanitizer) {
    let outcome = run(driver, config, args, sanitizer);
    assert_eq!(outcome.checked, expected, "{driver} {args:?} {config:?}: checked a different number of outputs");
    assert_eq!(outcome.bad, 0, "{driver} {args:?} {config:?}: wrong outputs ({outcome:?})");
    assert_eq!(outcome.raised.unwrap_or(0), 0, "{driver} {args:?} {config:?}: counters left raised");
    assert!(outcome.success, "{driver} {args:?} {config:?} failed: {}", outcome.stderr);
}

fn config(pairs: &[(&str, i64)]) -> Config {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// The best configs of the committed entries of `kernel` (kernels/autotune/*.json), with their files.
fn entries(kernel: &str) -> Vec<(String, Config)> {
    let mut found = Vec::new();
    for file in std::fs::read_dir(manifest_dir().join("autotune")).unwrap() {
        let path = file.unwrap().path();
        if path.extension() != Some(std::ffi::OsStr::new("json")) {
            continue;
        }
        let entry: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if entry["kernel"] != kernel {
            continue;
        }
        let best = entry["best"].as_object().unwrap_or_else(|| panic!("{}: no `best` object", path.display()));
        let config = best.iter().map(|(k, v)| (k.clone(), v.as_i64().expect("integer parameter"))).collect();
        found.push((path.file_name().unwrap().to_string_lossy().into_owned(), config));
    }
    assert!(!found.is_empty(), "no committed entry of {kernel}");
    found.sort();
    found
}

#[test]
fn vector_add_entries_and_default_on_cpu() {
    let mut configs: Vec<Config> = entries("vector_add").into_iter().map(|(_, c)| c).collect();
    configs.push(config(&[("block", 256), ("items", 1), ("vec", 1)]));
    for c in &configs {
        // A length no block's span divides: the last block runs past the end, and with vec > 1 one vector
        // straddles it (the scalar path).
        let n = 3 * c["block"] * c["items"] * c["vec"] + 5;
        check("vector_add", c, &[n], n as usize);
    }
}

#[test]
fn softmax_entries_and_paths_on_cpu() {
    let mut configs: Vec<Config> = entries("softmax").into_iter().map(|(_, c)| c).collect();
    // The default; rows of several warps, two a block (the shuffles, then shared memory across a row's
    // warps); rows narrower than a warp (shuffles within part of one); and the shared-memory tree.
    configs.push(config(&[("block", 256), ("rpb", 1), ("items", 4), ("vec", 4), ("reduce", 0)]));
    configs.push(config(&[("block", 256), ("rpb", 2), ("items", 4), ("vec", 4), ("reduce", 0)]));
    configs.push(config(&[("block", 64), ("rpb", 8), ("items", 2), ("vec", 4), ("reduce", 0)]));
    configs.push(config(&[("block", 128), ("rpb", 4), ("items", 1), ("vec", 1), ("reduce", 1)]));
    for c in &configs {
        let chunk = c["block"] / c["rpb"] * c["items"] * c["vec"];
        // One chunk a row (the values stay in registers) and three (the row is read again); with rpb > 1,
        // a row count that leaves the last block part empty.
        for cols in [chunk, 3 * chunk] {
            let rows = 2 * c["rpb"] + 1;
            check("softmax", c, &[rows, cols], (rows * cols) as usize);
        }
    }
}

/// The committed SGEMM entries' configs the CPU can run: `alg = 0` (`alg = 1` copies with inline PTX,
/// `cp.async`). There may be none after a retune; the other configs still run.
fn sgemm_entry_configs() -> Vec<Config> {
    entries("sgemm").into_iter().map(|(_, c)| c).filter(|c| c["alg"] == 0).collect()
}

/// SGEMM's default (`alg = 0`), with `changes`.
fn sgemm_default_with(changes: &[(&str, i64)]) -> Config {
    let mut c = config(&[
        ("bm", 128),
        ("bn", 128),
        ("bk", 8),
        ("tm", 8),
        ("tn", 8),
        ("vec", 4),
        ("pad", 4),
        ("map", 0),
        ("db", 1),
        ("alg", 0),
        ("group", 1),
    ]);
    for &(k, v) in changes {
        c.insert(k.to_string(), v);
    }
    c
}

/// Tile rows for a grid check of `config`: one more than its rasterization group, so that a whole group
/// runs and then a short one (three when tiles are not grouped).
fn tile_rows(config: &Config) -> i64 {
    config["group"].max(2) + 1
}

#[test]
fn sgemm_entries_and_paths_on_cpu() {
    let mut configs = sgemm_entry_configs();
    configs.push(sgemm_default_with(&[]));
    // The other thread mapping, single buffering, narrower loads, wider slices, odd-shaped thread tiles
    // and grouped rasterization.
    configs.push(sgemm_default_with(&[("map", 1), ("db", 0), ("vec", 2), ("pad", 0)]));
    configs.push(sgemm_default_with(&[
        ("bm", 64),
        ("bn", 256),
        ("bk", 16),
        ("tm", 4),
        ("tn", 16),
        ("vec", 1),
        ("group", 8),
    ]));
    configs.push(sgemm_default_with(&[("bm", 32), ("bn", 64), ("bk", 32), ("tm", 2), ("tn", 4), ("group", 16)]));
    for c in configs {
        // A full group of tile rows and a short one; two tile columns; four slices of K.
        let (m, n, k) = (tile_rows(&c) * c["bm"], 2 * c["bn"], 4 * c["bk"]);
        check("sgemm", &c, &[m, n, k], (m * n) as usize);
    }
}

/// The stream-K prototype (`cuda/sgemm_streamk.cu`) with every committed `alg = 0` entry's config, the
/// default's tiles, and 64 x 128 x 16 tiles of 8 x 4 with `map 1`, `db 0`, `vec 2`, `pad 0` (no group),
/// at grids that reach each of its schedules. The tiles are a full group of rows and a short one by four
/// columns (12 tiles ungrouped, 36 with group 8): G = 2 divides them and G = 40 exceeds them (whole tiles
/// only, as does G = 16 or 25 for 12 tiles), G = 7 and 25 leave T / G == 1 for 12 and 36 tiles (no whole
/// tile), and G = 5, and G = 7 or 16 for 36 tiles, leave whole tiles, then split ones. K is 8 slices, so
/// the splits fall at several places inside a tile.
/// The driver launches twice, with the blocks in opposite orders, and checks that the bits agree and that
/// every counter is back at zero.
#[test]
fn sgemm_streamk_schedules_on_cpu() {
    let mut configs = sgemm_entry_configs();
    configs.push(sgemm_default_with(&[]));
    configs.push(sgemm_default_with(&[
        ("bm", 64),
        ("bn", 128),
        ("bk", 16),
        ("tm", 8),
        ("tn", 4),
        ("vec", 2),
        ("pad", 0),
        ("map", 1),
        ("db", 0),
    ]));
    for c in &configs {
        let (m, n, k) = (tile_rows(c) * c["bm"], 4 * c["bn"], 8 * c["bk"]);
        for blocks in [2, 5, 7, 16, 25, 40] {
            check("sgemm_streamk", c, &[m, n, k, blocks], (m * n) as usize);
        }
    }
}

/// The harness finds what it is for: a kernel that computes wrong values fails the check, and one that
/// reads past the end of a buffer fails the address sanitizer.
#[test]
fn planted_bugs_fail_on_cpu() {
    // `broken.cpp` is vector_add's driver around a kernel that reads `b` one element late.
    let off_by_one = run("broken", &config(&[("block", 64), ("broken", 1)]), &[1000], Sanitizer::Address);
    assert_eq!(off_by_one.checked, 1000);
    assert!(off_by_one.bad > 0 && off_by_one.max_err > 0.0, "the off-by-one kernel passed: {off_by_one:?}");
    assert!(!off_by_one.success);
    let past_the_end = run("broken", &config(&[("block", 64), ("broken", 2)]), &[1000], Sanitizer::Address);
    assert!(!past_the_end.success, "reading past the end went unseen: {past_the_end:?}");
    assert!(past_the_end.stderr.contains("heap-buffer-overflow"), "no sanitizer report: {}", past_the_end.stderr);
}

/// The entries and defaults of the kernels that share data through shared memory, under the thread
/// sanitizer: no data race between a block's threads (every read of another thread's write is behind a
/// barrier), and no read of a shared element that no thread of the block wrote.
#[test]
fn shared_memory_is_synchronised_on_cpu() {
    let mut softmax: Vec<Config> = entries("softmax").into_iter().map(|(_, c)| c).collect();
    softmax.push(config(&[("block", 256), ("rpb", 2), ("items", 4), ("vec", 4), ("reduce", 0)]));
    for c in &softmax {
        let (rows, cols) = (2 * c["rpb"] + 1, c["block"] / c["rpb"] * c["items"] * c["vec"]);
        check_under("softmax", c, &[rows, cols], (rows * cols) as usize, Sanitizer::Thread);
    }
    let mut sgemm = sgemm_entry_configs();
    sgemm.push(sgemm_default_with(&[]));
    sgemm.push(sgemm_default_with(&[("map", 1), ("db", 0), ("vec", 2), ("pad", 0)]));
    for c in &sgemm {
        let (m, n, k) = (tile_rows(c) * c["bm"], 2 * c["bn"], 4 * c["bk"]);
        check_under("sgemm", c, &[m, n, k], (m * n) as usize, Sanitizer::Thread);
        let n = 4 * c["bn"];
        check_under("sgemm_streamk", c, &[m, n, k, 7], (m * n) as usize, Sanitizer::Thread);
    }
}

/// The thread sanitizer finds a missing barrier, and the poisoned shared arrays a read of what no thread
/// wrote.
#[test]
fn planted_shared_memory_bugs_fail_on_cpu() {
    let race = run("broken", &config(&[("block", 64), ("broken", 3)]), &[1000], Sanitizer::Thread);
    assert!(!race.success && race.stderr.contains("data race"), "the missing barrier went unseen: {race:?}");
    let unwritten = run("broken", &config(&[("block", 64), ("broken", 4)]), &[1000], Sanitizer::Thread);
    assert_eq!(unwritten.checked, 1000);
    assert_eq!(unwritten.bad, 1000, "a read of unwritten shared memory went unseen: {unwritten:?}");
}
