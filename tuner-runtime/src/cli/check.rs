//! `cargo autotune check`: CI's `sqlx prepare --check` for the tuning cache. Needs no GPU.
//!
//! For every `#[autotune]` launcher of the crate it recomputes the content key from the kernel source and
//! the attribute, reads and verifies every cache entry, and runs code generation against the declared
//! space exactly as the build would. It lists each problem with the command that fixes it, and exits
//! 1 when there is one:
//!
//! - a *miss*: no entry tuned for the current source and attribute (an offline build would fail);
//! - a *stale* entry: tuned for another version of the kernel, or left behind by a launcher that is gone;
//! - an *invalid* entry: corrupt, hand-edited, or not fitting the declared space (the build would fail).

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::{emit, entry};
use crate::cache::{content_key, short, Cache, CACHE_DIR_ENV};
use crate::scan::scan_crate;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
}

/// One thing `check` found wrong.
#[derive(Debug)]
pub enum Problem {
    Miss { kernel: String, key: String },
    Stale { kernel: String, path: PathBuf, reason: String },
    Invalid { path: PathBuf, reason: String },
}

/// Checks the crate at `root`; returns the kernels' names, the problems and a `kernel` JSON line per kernel.
pub fn check_crate(root: &std::path::Path) -> anyhow::Result<(Vec<String>, Vec<Problem>, Vec<serde_json::Value>)> {
    let scan = scan_crate(root)?;
    for p in &scan.problems {
        eprintln!("warning: {}: {} (the compiler will report this too)", p.path.display(), p.message);
    }
    let env_dir = std::env::var_os(CACHE_DIR_ENV).map(PathBuf::from);
    let cache = Cache::for_crate(root, env_dir.as_deref());
    let mut problems = Vec::new();
    let mut kernels = Vec::new();
    let mut owned: HashSet<PathBuf> = HashSet::new();
    let mut lines = Vec::new();
    for k in &scan.kernels {
        let name = k.spec.name.clone();
        kernels.push(name.clone());
        let found = cache.lookup(&k.spec, &k.source_blake3).with_context(|| format!("kernel `{name}`"))?;
        owned.extend(cache.files_of(&name)?);
        for e in found.corrupt {
            let path = match &e {
                crate::cache::CacheError::Corrupt { path, .. } | crate::cache::CacheError::Read { path, .. } => {
                    path.clone()
                }
                _ => PathBuf::new(),
            };
            problems.push(Problem::Invalid { path, reason: crate::error_chain(&e) });
        }
        for (c, why) in &found.stale {
            problems.push(Problem::Stale { kernel: name.clone(), path: c.path.clone(), reason: why.to_string() });
        }
        if found.fresh.is_empty() {
            problems.push(Problem::Miss {
                kernel: name.clone(),
                key: short(&content_key(&k.source_blake3, &k.spec)).to_owned(),
            });
        } else if let Err(e) = crate::codegen::generate(&k.spec, &found.fresh) {
            let path = match &e {
                crate::codegen::CodegenError::Entry { path, .. } => path.clone(),
                _ => k.declared_in.clone(),
            };
            problems.push(Problem::Invalid { path, reason: crate::error_chain(&e) });
        }
        let mut line = json!({
            "type": "kernel", "kernel": name, "declared_in": k.declared_in.display().to_string(),
            "source": k.source_path.display().to_string(),
            "content_key": short(&content_key(&k.source_blake3, &k.spec)),
        });
        line["entries"] = found.fresh.iter().map(entry).collect();
        lines.push(line);
    }
    for path in cache.all_files()? {
        if !owned.contains(&path) {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let kernel = stem.split('-').next().unwrap_or(stem).to_owned();
            problems.push(Problem::Stale { kernel, path, reason: "no #[autotune] launcher has this name".into() });
        }
    }
    Ok((kernels, problems, lines))
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let root = args.krate.crate_root()?;
    let manifest = CrateArgs::manifest_of(&root);
    let tune = format!("cargo autotune tune --manifest-path {}", manifest.display());
    let (kernels, problems, lines) = check_crate(&root)?;
    for p in &problems {
        let (text, line) = match p {
            Problem::Miss { kernel, key } => (
                format!("miss: kernel `{kernel}` has no entry for its current source and attribute (content key {key}); run `{tune}` on a GPU machine and commit the entries"),
                json!({"type": "miss", "kernel": kernel, "content_key": key, "device": null, "fix": tune}),
            ),
            Problem::Stale { kernel, path, reason } => (
                format!("stale: {} (kernel `{kernel}`): {reason}; delete it, or run `{tune}`, which replaces it", path.display()),
                json!({"type": "stale", "kernel": kernel, "path": path.display().to_string(), "reason": reason, "fix": tune}),
            ),
            Problem::Invalid { path, reason } => (
                format!("invalid: {reason}"),
                json!({"type": "invalid", "path": path.display().to_string(), "reason": reason, "fix": format!("delete it and run `{tune}`")}),
            ),
        };
        eprintln!("{text}");
        if args.krate.json {
            emit(line);
        }
    }
    if args.krate.json {
        for l in lines {
            emit(l);
        }
        emit(json!({"type": "summary", "kernels": kernels.len(), "problems": problems.len()}));
    }
    if problems.is_empty() {
        eprintln!("ok: {} kernel(s), every one has a fresh entry", kernels.len());
        Ok(0)
    } else {
        eprintln!("{} problem(s) in {} kernel(s)", problems.len(), kernels.len());
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{cache_key, config_json, Entry, TuningInfo, FORMAT_VERSION};
    use crate::device::DeviceFingerprint;

    /// A crate with one launcher `scale` and (optionally) a fresh entry for it.
    fn krate(with_entry: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::scan::tests::fixture_crate(dir.path());
        if with_entry {
            let k = scan_crate(dir.path()).unwrap().kernels.remove(0);
            let device =
                DeviceFingerprint { name: "GPU".into(), compute_capability: (9, 0), driver: None, nvrtc: None };
            let default = config_json(&k.spec.default_config().unwrap());
            let entry = Entry {
                format_version: FORMAT_VERSION,
                key: cache_key(&k.source_blake3, &k.spec, &device),
                kernel: k.spec.name.clone(),
                source_blake3: k.source_blake3.clone(),
                spec: k.spec.clone(),
                device,
                best: default.clone(),
                best_score: 1.0,
                best_time_ms: Some(1.0),
                default,
                default_time_ms: Some(1.0),
                tuning: TuningInfo {
                    strategy: "test".into(),
                    objective: "test".into(),
                    evaluations: 1,
                    valid: 1,
                    wall_seconds: 0.0,
                    tuned_at: 0,
                    tool: "test".into(),
                },
            };
            Cache::for_crate(dir.path(), None).write(&entry).unwrap();
        }
        dir
    }

    fn kinds(problems: &[Problem]) -> Vec<&'static str> {
        problems
            .iter()
            .map(|p| match p {
                Problem::Miss { .. } => "miss",
                Problem::Stale { .. } => "stale",
                Problem::Invalid { .. } => "invalid",
            })
            .collect()
    }

    #[test]
    fn a_fresh_entry_passes() {
        let dir = krate(true);
        let (kernels, problems, lines) = check_crate(dir.path()).unwrap();
        assert_eq!(kernels, ["scale"]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(lines[0]["entries"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn no_entry_is_a_miss() {
        let dir = krate(false);
        assert_eq!(kinds(&check_crate(dir.path()).unwrap().1), ["miss"]);
    }

    #[test]
    fn a_changed_kernel_makes_a_stale_entry_and_a_miss() {
        let dir = krate(true);
        std::fs::write(dir.path().join("cuda/scale.cu"), "// v2\n").unwrap();
        let (_, problems, _) = check_crate(dir.path()).unwrap();
        assert_eq!(kinds(&problems), ["stale", "miss"]);
        assert!(matches!(&problems[0], Problem::Stale { reason, .. } if reason.contains("kernel source changed")));
    }

    #[test]
    fn orphans_and_corrupt_entries_are_reported() {
        let dir = krate(true);
        let cache = dir.path().join("autotune");
        std::fs::write(cache.join("gone-gpu-000000000000.json"), "{}").unwrap();
        let entry = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("scale-"))
            .unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        std::fs::write(entry.path(), text.replacen("\"block\": 64", "\"block\": 65", 1)).unwrap();
        let (_, problems, _) = check_crate(dir.path()).unwrap();
        assert_eq!(kinds(&problems), ["invalid", "miss", "stale"], "{problems:?}");
        assert!(matches!(&problems[0], Problem::Invalid { reason, .. } if reason.contains("does not allow 65")));
        assert!(matches!(&problems[2], Problem::Stale { reason, .. } if reason.contains("no #[autotune] launcher")));
    }
}
