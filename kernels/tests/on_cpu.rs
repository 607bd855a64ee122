//! The kernels' CUDA sources, unchanged, run on the CPU through `tests/cpu/cuda_cpu.h` (one OS thread per CUDA
//! thread) and are checked against float64 references: every committed entry's config that has no inline
//! PTX, each default, and configs picked to reach the code paths the entries do not. A GPU is not needed,
//! so CI checks what it can of a kernel's indexing before a tune ever runs it.
//!
//! Each run compiles a small driver (`tests/cpu/<kernel>.cpp`) with the config's `-D` defines, as NVRTC
//! gets them, and reads its one line: `checked=N bad=N max_err=E`.

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
}

/// Compiles `tests/cpu/<driver>.cpp` with `config`'s defines, runs it with `args` and reads its outcome.
fn run(driver: &str, config: &Config, args: &[i64]) -> Outcome {
    let defines: Vec<String> = config.iter().map(|(k, v)| format!("-D{}={v}", k.to_uppercase())).collect();
    let name = format!("{driver}-{}", defines.join("").replace(['-', '='], "_"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("on_cpu").join(name);
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let cpu = manifest_dir().join("tests/cpu");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let compiled = Command::new(&cxx)
        .args(["-std=c++20", "-O1", "-pthread", "-Wno-attributes"])
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
    let ran = Command::new(&exe).args(args.iter().map(i64::to_string)).output().unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let field = |key: &str| -> &str {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("{driver} {args:?} with {defines:?} printed no `{key}`: {stdout:?}"))
    };
    let outcome = Outcome {
        checked: field("checked").parse().unwrap(),
        bad: field("bad").parse().unwrap(),
        max_err: field("max_err").parse().unwrap(),
    };
    eprintln!("{driver} {args:?} {defines:?}: {outcome:?}");
    outcome
}

/// Runs and asserts that every one of `expected` outputs was written and right.
fn check(driver: &str, config: &Config, args: &[i64], expected: usize) {
    let outcome = run(driver, config, args);
    assert_eq!(outcome.checked, expected, "{driver} {args:?} {config:?}: checked a different number of outputs");
    assert_eq!(outcome.bad, 0, "{driver} {args:?} {config:?}: wrong outputs ({outcome:?})");
}

fn config(pairs: &[(&str, i64)]) -> Config {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// The best configs of the committed entries of `kernel` (kernels/autotune/*.json), with their files.
fn entries(kernel: &str) -> Vec<(String, Config)> {
    let mut found = Vec::new();
    for file in std::fs::read_dir(manifest_dir().join("autotune")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
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
        // A length no block size divides, so the last block's tail takes the scalar path.
        let n = 3 * c["block"] * c["items"] * c["vec"] + 5;
        check("vector_add", c, &[n], n as usize);
    }
}

#[test]
fn softmax_entries_and_paths_on_cpu() {
    let mut configs: Vec<Config> = entries("softmax").into_iter().map(|(_, c)| c).collect();
    // The default, and row groups narrower than a warp (shuffles within a warp's part) with each reduction.
    configs.push(config(&[("block", 256), ("rpb", 1), ("items", 4), ("vec", 4), ("reduce", 0)]));
    configs.push(config(&[("block", 64), ("rpb", 8), ("items", 2), ("vec", 4), ("reduce", 0)]));
    configs.push(config(&[("block", 128), ("rpb", 4), ("items", 1), ("vec", 1), ("reduce", 1)]));
    for c in &configs {
        let chunk = c["block"] / c["rpb"] * c["items"] * c["vec"];
        // One chunk a row (the values stay in registers) and three (the row is read again); a row count
        // that leaves the last block part empty.
        for cols in [chunk, 3 * chunk] {
            let rows = 2 * c["rpb"] + 1;
            check("softmax", c, &[rows, cols], (rows * cols) as usize);
        }
    }
}

/// SGEMM configs the CPU can run: `alg = 0` (`alg = 1` copies with inline PTX, `cp.async`).
fn sgemm_cpu_configs() -> Vec<Config> {
    let mut configs: Vec<Config> = entries("sgemm").into_iter().map(|(_, c)| c).filter(|c| c["alg"] == 0).collect();
    assert!(!configs.is_empty(), "no committed `alg = 0` SGEMM entry to check");
    let base = [
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
    ];
    let with = |changes: &[(&str, i64)]| {
        let mut c = config(&base);
        for &(k, v) in changes {
            c.insert(k.to_string(), v);
        }
        c
    };
    configs.push(with(&[]));
    // The other thread mapping, single buffering, narrower loads, wider slices, odd-shaped thread tiles
    // and grouped rasterization with a short last group.
    configs.push(with(&[("map", 1), ("db", 0), ("vec", 2), ("pad", 0)]));
    configs.push(with(&[("bm", 64), ("bn", 256), ("bk", 16), ("tm", 4), ("tn", 16), ("vec", 1), ("group", 8)]));
    configs.push(with(&[("bm", 32), ("bn", 64), ("bk", 32), ("tm", 2), ("tn", 4), ("group", 16)]));
    configs
}

#[test]
fn sgemm_entries_and_paths_on_cpu() {
    for c in sgemm_cpu_configs() {
        // Three tile rows, so a group of 8 or 16 is cut short; two tile columns; four slices of K.
        let (m, n, k) = (3 * c["bm"], 2 * c["bn"], 4 * c["bk"]);
        check("sgemm", &c, &[m, n, k], (m * n) as usize);
    }
}

/// The stream-K prototype (`cuda/sgemm_streamk.cu`) at grids that reach each of its schedules, for 12 tiles:
/// whole tiles only (G divides them, or G exceeds them), no whole tiles (12 / G == 1), and whole tiles then
/// split ones. K is 8 slices, so the splits fall at several places inside a tile. The driver launches twice,
/// with the blocks in opposite orders, and checks that the bits agree.
#[test]
fn sgemm_streamk_schedules_on_cpu() {
    let mut configs: Vec<Config> = sgemm_cpu_configs().into_iter().take(1).collect();
    configs.push(config(&[
        ("bm", 64),
        ("bn", 128),
        ("bk", 16),
        ("tm", 8),
        ("tn", 4),
        ("vec", 2),
        ("pad", 0),
        ("map", 1),
        ("db", 0),
        ("group", 1),
    ]));
    for c in &configs {
        let (m, n, k) = (3 * c["bm"], 4 * c["bn"], 8 * c["bk"]);
        for blocks in [2, 5, 7, 11, 16] {
            check("sgemm_streamk", c, &[m, n, k, blocks], (m * n) as usize);
        }
    }
}

/// The harness finds what it is for: a kernel whose indexing is off by one element fails the check.
#[test]
fn an_indexing_error_fails_on_cpu() {
    // `broken.cpp` is vector_add's driver around a copy of the kernel that reads `b` one element late.
    let outcome = run("broken", &config(&[("block", 64), ("items", 1), ("vec", 1)]), &[1000]);
    assert_eq!(outcome.checked, 1000);
    assert!(outcome.bad > 0, "the off-by-one kernel passed: {outcome:?}");
    assert!(outcome.max_err > 0.0);
}
