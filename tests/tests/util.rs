//! Test helpers: each test gets its own directory named after it, fixtures are copied there with their
//! path dependencies made absolute, and every fixture build uses one shared `CARGO_TARGET_DIR` so that
//! our crates compile once per test run, not once per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_owned()
}

/// A fresh, empty directory named after `test`.
pub fn test_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("autotune-tests").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the previous run's directory");
    }
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// The target directory all fixture builds share.
pub fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target")
}

/// A copy of `tests/fixtures/<name>` in the test's own directory.
pub struct Fixture {
    pub root: PathBuf,
    /// The package name of this copy (unique per test).
    pub package: String,
}

impl Fixture {
    pub fn copy(name: &str, test: &str) -> Fixture {
        let from = workspace().join("tests/fixtures").join(name);
        let root = test_dir(test).join(name);
        copy_dir(&from, &root);
        let manifest = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("read the fixture manifest");
        let absolute = format!("path = \"{}/", workspace().display());
        // Cargo hashes a workspace root's units by name and version, not by path, so copies with the same
        // name would share fingerprints and `OUT_DIR` in the shared target dir and rebuild each other.
        let package_name = format!("fixture-{}", test.replace('_', "-"));
        let package = format!("name = \"{package_name}\"");
        let text = text.replace("path = \"../../../", &absolute).replacen(
            &format!("name = \"autotune-fixture-{name}\""),
            &package,
            1,
        );
        std::fs::write(&manifest, text).expect("write the manifest");
        // The workspace's lock file pins exactly the versions `cargo test --workspace` already
        // downloaded, so the fixture builds with `--offline`; cargo drops the entries it does not use.
        std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).expect("copy the lock file");
        Fixture { root, package: package_name }
    }

    /// `cargo <args>` in the fixture, with the shared target dir and no autotune settings from outside.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args(args).current_dir(&self.root).env("CARGO_TARGET_DIR", shared_target()).env("RUST_BACKTRACE", "0");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("AUTOTUNE_") || k.starts_with("OPENAI_") {
                c.env_remove(k);
            }
        }
        c
    }

    /// `cargo build` (or `run`) with `AUTOTUNE_OFFLINE=1` and no network (see [`Fixture::copy`] on the
    /// lock file).
    pub fn offline(&self, subcommand: &str) -> Output {
        self.cargo(&[subcommand, "--offline", "--quiet"]).env("AUTOTUNE_OFFLINE", "1").output().expect("run cargo")
    }

    /// The one committed cache entry.
    pub fn entry(&self) -> PathBuf {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.root.join("autotune"))
            .expect("the fixture has a cache dir")
            .map(|e| e.expect("list the cache").path())
            .collect();
        assert_eq!(entries.len(), 1, "the fixture has one entry: {entries:?}");
        entries.remove(0)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for item in std::fs::read_dir(from).expect("list the fixture") {
        let item = item.expect("list the fixture");
        let (src, dst) = (item.path(), to.join(item.file_name()));
        if item.file_name() == "target" {
            continue;
        }
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy a fixture file");
        }
    }
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn both(out: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A cache entry written by hand for a fixture: `best` (a config of `spec`'s space) on `device`, with the
/// given best and default times. What `cargo autotune tune` would write, less the tuning itself.
pub fn hand_written_entry(
    spec: &tuner_runtime::CheckedSpec,
    source_blake3: &str,
    device: tuner_runtime::device::DeviceFingerprint,
    best: &tuner_runtime::Config,
    (best_ms, default_ms): (f64, f64),
    tool: &str,
) -> tuner_runtime::build::cache::Entry {
    use tuner_runtime::build::cache::{cache_key, config_json, Entry, TuningInfo, FORMAT_VERSION};
    Entry {
        format_version: FORMAT_VERSION,
        key: cache_key(source_blake3, spec, &device),
        kernel: spec.name.clone(),
        source_blake3: source_blake3.to_owned(),
        best: config_json(best),
        best_score: 1.0 / best_ms,
        best_time_ms: Some(best_ms),
        default: config_json(spec.default_config()),
        default_time_ms: Some(default_ms),
        spec: spec.spec().clone(),
        device,
        tuning: TuningInfo {
            strategy: "hand-written".into(),
            objective: "1/time".into(),
            evaluations: 0,
            valid: 0,
            wall_seconds: 0.0,
            tuned_at: 0,
            tool: tool.into(),
        },
        starts: vec![],
    }
}
