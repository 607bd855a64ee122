//! The offline fixture (`tests/fixtures/offline`) builds with `AUTOTUNE_OFFLINE=1` from its committed
//! cache entry, and its binary prints what was baked in.

use std::collections::BTreeMap;

use tuner_runtime::build::cache::{cache_key, config_json, Cache, Entry, TuningInfo, FORMAT_VERSION};
use tuner_runtime::device::DeviceFingerprint;
use tuner_runtime::build::scan::scan_crate;

use crate::util::{both, workspace, Fixture};

/// The device the fixture's entry claims to be tuned on.
pub fn fixture_gpu() -> DeviceFingerprint {
    DeviceFingerprint { name: "Fixture GPU".into(), compute_capability: (9, 0), driver: None, nvrtc: None }
}

/// The entry the fixture should have committed, computed from its current source and attribute.
pub fn expected_entry() -> Entry {
    let root = workspace().join("tests/fixtures/offline");
    let kernel = scan_crate(&root).expect("scan the fixture").kernels.remove(0);
    let spec = kernel.spec;
    let space = spec.space().clone();
    let best = space
        .point_of_pairs([
            ("block".to_owned(), 128.into()),
            ("items".to_owned(), 4.into()),
            ("unroll".to_owned(), true.into()),
        ])
        .expect("the fixture's best config is in its space");
    Entry {
        format_version: FORMAT_VERSION,
        key: cache_key(&kernel.source_blake3, &spec, &fixture_gpu()),
        kernel: spec.name.clone(),
        source_blake3: kernel.source_blake3.clone(),
        best: config_json(&space.config(&best)),
        best_score: 20.0,
        best_time_ms: Some(0.05),
        default: config_json(spec.default_config()),
        default_time_ms: Some(0.08),
        spec: spec.spec().clone(),
        device: fixture_gpu(),
        tuning: TuningInfo {
            strategy: "hand-written".into(),
            objective: "1/time".into(),
            evaluations: 0,
            valid: 0,
            wall_seconds: 0.0,
            tuned_at: 0,
            tool: "tests/tests/fixture_offline.rs".into(),
        },
    }
}

/// The committed entry matches the fixture's source; `AUTOTUNE_BLESS=1` rewrites it after a change.
#[test]
fn the_committed_entry_is_current() {
    let dir = workspace().join("tests/fixtures/offline/autotune");
    let want = expected_entry();
    let path = dir.join(want.file_name());
    if std::env::var_os("AUTOTUNE_BLESS").is_some() {
        for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            std::fs::remove_file(old.path()).expect("remove an old entry");
        }
        Cache::with_dirs(vec![dir.clone()]).write(&want).expect("write the entry");
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; rerun with AUTOTUNE_BLESS=1 to regenerate it", path.display()));
    assert_eq!(text, want.to_pretty_json(), "{} is stale: rerun with AUTOTUNE_BLESS=1", path.display());
}

fn parse(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn an_offline_build_bakes_the_cached_best_and_rebuilds_nothing() {
    let f = Fixture::copy("offline", "an_offline_build_bakes_the_cached_best");
    let out = f.offline("run");
    assert!(out.status.success(), "offline build failed:\n{}", both(&out));
    let printed = parse(&out.stdout);
    let entry = expected_entry();
    let best = |k: &str| entry.best[k].to_string();
    let want = format!("block={} items={} unroll={}", best("block"), best("items"), best("unroll"));
    assert_eq!(printed["fixture-gpu"], want, "the generated table holds the cached best");
    // No GPU here, and none matches another compute capability: both run the declared default.
    assert_eq!(printed["launcher"], "block=256 items=1 unroll=false");
    assert_eq!(printed["other-gpu"], "block=256 items=1 unroll=false");
    assert_eq!(printed["entries"], entry.file_name());

    // A warm build runs neither the build script nor the compiler.
    let warm = f.cargo(&["build", "--offline", "-v"]).env("AUTOTUNE_OFFLINE", "1").output().expect("run cargo");
    assert!(warm.status.success(), "{}", both(&warm));
    let stderr = String::from_utf8_lossy(&warm.stderr);
    assert!(!stderr.contains("Running") && !stderr.contains("Compiling"), "the warm build did work:\n{stderr}");
}
