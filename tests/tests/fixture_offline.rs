//! The offline fixture (`tests/fixtures/offline`) builds with `AUTOTUNE_OFFLINE=1` from its committed
//! cache entry, and its binary prints what was baked in.

use std::collections::BTreeMap;

use tuner_runtime::build::cache::{Cache, Entry};
use tuner_runtime::build::scan::scan_crate;
use tuner_runtime::device::DeviceFingerprint;

use crate::util::{both, hand_written_entry, workspace, Fixture};

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
    hand_written_entry(
        &spec,
        &kernel.source_blake3,
        fixture_gpu(),
        &space.config(&best),
        (0.05, 0.08),
        "tests/tests/fixture_offline.rs",
    )
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

/// `AUTOTUNE_WORKER=1` inherited from outside used to turn the build script into a benchmark worker
/// that exited at once (no directives, no generated code). The worker role is an argument now: the
/// variable changes nothing, and the build bakes the entry as it should.
#[test]
fn an_inherited_worker_variable_does_not_hijack_the_build_script() {
    let f = Fixture::copy("offline", "an_inherited_worker_variable");
    let out = f
        .cargo(&["run", "--offline", "--quiet"])
        .env("AUTOTUNE_OFFLINE", "1")
        .env("AUTOTUNE_WORKER", "1")
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "{}", both(&out));
    let entry = expected_entry();
    let printed = parse(&out.stdout);
    assert_eq!(printed["entries"], entry.file_name(), "the build script ran and generated the table");
}

/// A strategy the build-dependency was not built for is an error naming the feature, not a silent
/// fallback or an unrelated failure.
#[test]
fn an_llm_strategy_without_the_llm_feature_names_the_feature() {
    let f = Fixture::copy("offline", "an_llm_strategy_without_the_llm_feature");
    let out =
        f.cargo(&["build", "--offline", "--quiet"]).env("AUTOTUNE_STRATEGY", "hybrid").output().expect("run cargo");
    assert!(!out.status.success(), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in ["AUTOTUNE_STRATEGY=\"hybrid\"", "`llm` feature", "[build-dependencies]"] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
}

/// Touching a launcher reruns the build script; the digest of what its output depends on is unchanged,
/// so it replays its directives and rewrites nothing (the generated file keeps its modification time).
#[test]
fn a_touched_source_reruns_the_build_script_for_nothing() {
    let f = Fixture::copy("offline", "a_touched_source_reruns_for_nothing");
    let out = f.offline("build");
    assert!(out.status.success(), "{}", both(&out));
    let generated = generated_files(&f);
    assert_eq!(generated.len(), 1, "{generated:?}");
    let before = std::fs::metadata(&generated[0]).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let main = f.root.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.clone() + "\n// an edit that does not concern the kernel\n").unwrap();
    let out = f.cargo(&["build", "--offline", "-v"]).env("AUTOTUNE_OFFLINE", "1").output().expect("run cargo");
    assert!(out.status.success(), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("build-script-build"), "the script reran: {}", both(&out));
    assert_eq!(
        std::fs::metadata(&generated[0]).unwrap().modified().unwrap(),
        before,
        "the generated file was rewritten"
    );
    // An edit of the attribute does change the digest: the build runs in full, finds the committed
    // entry stale for the new attribute and, offline, fails saying so.
    assert!(text.contains("block * items <= 1024"), "the fixture's constraint");
    std::fs::write(&main, text.replace("block * items <= 1024", "block * items <= 512")).unwrap();
    let out = f.offline("build");
    assert!(!out.status.success(), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("attribute changed"), "{}", both(&out));
}

/// The generated files of `f`'s build scripts in the shared target directory.
fn generated_files(f: &Fixture) -> Vec<std::path::PathBuf> {
    let build = crate::util::shared_target().join("debug/build");
    let mut out = Vec::new();
    for d in std::fs::read_dir(build).into_iter().flatten().flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let p = d.path().join("out/autotune/scale.rs");
        if name.starts_with(&f.package) && p.is_file() {
            out.push(p);
        }
    }
    out
}
