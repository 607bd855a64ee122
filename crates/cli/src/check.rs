//! `cargo autotune check`: CI's `sqlx prepare --check` for the tuning cache. Needs no GPU.
//!
//! For every `#[autotune]` launcher of the crate it recomputes the content key from the kernel source and
//! the attribute, reads and verifies every cache entry, and runs code generation against the declared
//! space exactly as the build would. It lists each problem with the command that fixes it, and exits
//! 1 when there is one:
//!
//! - a *miss*: a size point (`sizes(…)`, else the bench sizes) with no entry tuned for the current source
//!   and attribute on any GPU (an offline build would fail); reported per point;
//! - a *stale* entry: tuned for another version of the kernel, or left behind by a launcher that is gone;
//! - an *invalid* entry: corrupt, hand-edited, or not fitting the declared space (the build would fail);
//! - a *temporary file* left by a writer that was killed (`git add` would commit it); one whose writer
//!   is still running is a write in progress and is left alone.
//!
//! Files in a cache directory that are no launcher's entries (`notes.json`) are reported as *strays*:
//! builds never read them, so they are not a failure.
//!
//! The check is device-blind: an entry of any GPU covers its point, as it does for an offline build.
//! `--device NAME` (with `--cc X.Y` when no entry names that GPU) asks about one GPU instead: each point
//! that GPU has no entry of its own for is a *fallback*, reported with what a launch there would run
//! (another size's entry, another GPU's, or the default), exactly as the generated code decides.
//!
//! Run from a workspace root (or given a workspace manifest), it checks every member that declares a
//! launcher. Finding no launcher at all is an error naming what it looked at (exit 2): a check that
//! checked nothing must not pass.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::{emit, entry};
use tuner_build::cache::{point_key, short, Cache};
use tuner_build::scan::scan_crate;
use tuner_build::Settings;
use tuner_spec::device::DeviceFingerprint;
use tuner_spec::spec::point_text;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
    /// Check for one GPU (its name as the driver reports it, e.g. "NVIDIA H200"): every size point it
    /// has no entry of its own for is reported with what it would fall back to.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// The compute capability of `--device` (`9.0`); needed when no entry names that GPU.
    #[arg(long, value_name = "MAJOR.MINOR", requires = "device", value_parser = crate::args::compute_capability)]
    pub cc: Option<(u32, u32)>,
}

/// One thing `check` found wrong.
#[derive(Debug)]
pub enum Problem {
    Miss {
        kernel: String,
        key: String,
        sizes: Option<String>,
    },
    /// `--device`: a point that GPU has no entry of its own for, and what a launch there runs instead.
    Fallback {
        kernel: String,
        device: String,
        sizes: String,
        runs: String,
    },
    Stale {
        kernel: String,
        path: PathBuf,
        reason: String,
    },
    Invalid {
        path: PathBuf,
        reason: String,
    },
    /// The temporary file of a write whose writer is gone.
    TempFile {
        path: PathBuf,
        writer: Option<u32>,
    },
}

/// What checking one crate found.
#[derive(Debug, Default)]
pub struct CrateCheck {
    pub kernels: Vec<String>,
    pub problems: Vec<Problem>,
    /// Files in the cache directories that are no launcher's entries.
    pub strays: Vec<PathBuf>,
    /// One `kernel` JSON line per kernel.
    pub lines: Vec<serde_json::Value>,
}

/// The GPU `check --device` asks about.
#[derive(Clone, Debug)]
pub struct DeviceQuery {
    pub name: String,
    pub compute_capability: Option<(u32, u32)>,
}

/// Checks the crate at `root` (for one GPU when `device` is given).
pub fn check_crate(
    root: &std::path::Path,
    settings: &Settings,
    device: Option<&DeviceQuery>,
) -> anyhow::Result<CrateCheck> {
    let scan = scan_crate(root)?;
    for p in &scan.problems {
        eprintln!("warning: {}: {} (the compiler will report this too)", p.path.display(), p.message);
    }
    let cache = Cache::for_crate(root, settings.cache_dir.as_deref());
    let mut problems = Vec::new();
    let mut kernels = Vec::new();
    let mut owned: HashSet<PathBuf> = HashSet::new();
    let mut lines = Vec::new();
    // `--device` without `--cc`: the compute capability any entry of the crate records for that GPU.
    let known_cc = match device.filter(|q| q.compute_capability.is_none()) {
        Some(q) => scan.kernels.iter().find_map(|k| {
            let found = cache.lookup(&k.spec, &k.source_blake3).ok()?;
            found.fresh.iter().find(|c| c.entry.device.name == q.name).map(|c| c.entry.device.compute_capability)
        }),
        None => None,
    };
    for k in &scan.kernels {
        let name = k.spec.name.clone();
        kernels.push(name.clone());
        let found = cache.lookup(&k.spec, &k.source_blake3).with_context(|| format!("kernel `{name}`"))?;
        owned.extend(cache.files_of(&name)?);
        for e in &found.corrupt {
            let path = match e {
                tuner_build::cache::CacheError::Corrupt { path, .. }
                | tuner_build::cache::CacheError::Read { path, .. } => path.clone(),
                _ => PathBuf::new(),
            };
            problems.push(Problem::Invalid { path, reason: tuner_spec::error_chain(e) });
        }
        for (c, why) in &found.stale {
            problems.push(Problem::Stale { kernel: name.clone(), path: c.path.clone(), reason: why.to_string() });
        }
        let points = k.spec.points();
        let several = points.len() > 1;
        for point in found.missing_everywhere(&k.spec) {
            problems.push(Problem::Miss {
                kernel: name.clone(),
                key: short(&point_key(&k.source_blake3, &k.spec, &point)).to_owned(),
                sizes: several.then(|| point_text(&point)),
            });
        }
        match tuner_build::codegen::dispatch_of(&k.spec, &found.fresh) {
            Err(e) => {
                let path = match &e {
                    tuner_build::codegen::CodegenError::Entry { path, .. } => path.clone(),
                    _ => k.declared_in.clone(),
                };
                problems.push(Problem::Invalid { path, reason: tuner_spec::error_chain(&e) });
            }
            Ok(dispatch) => {
                if let Some(q) = device {
                    let cc = q.compute_capability.or(known_cc);
                    let Some(cc) = cc else {
                        anyhow::bail!(
                            "no entry in {} names the GPU \"{}\", so its compute capability is unknown; pass --cc (e.g. --cc 9.0)",
                            cache.dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
                            q.name
                        );
                    };
                    let gpu =
                        DeviceFingerprint { name: q.name.clone(), compute_capability: cc, driver: None, nvrtc: None };
                    for point in found.missing_on(&gpu, &k.spec) {
                        let sizes: Vec<i64> = point.iter().map(|(_, v)| *v).collect();
                        let runs = match dispatch.choose(&q.name, cc, &sizes) {
                            Ok(choice) => crate::which::describe(&dispatch, &found.fresh, &choice),
                            Err(e) => e.to_string(),
                        };
                        problems.push(Problem::Fallback {
                            kernel: name.clone(),
                            device: q.name.clone(),
                            sizes: point_text(&point),
                            runs,
                        });
                    }
                }
            }
        }
        let mut line = json!({
            "type": "kernel", "kernel": name, "declared_in": k.declared_in.display().to_string(),
            "source": k.source_path.display().to_string(),
            "content_key": short(&point_key(&k.source_blake3, &k.spec, &k.spec.bench.sizes)),
            "sizes": points.iter().map(|p| point_text(p)).collect::<Vec<_>>(),
        });
        line["entries"] = found.fresh.iter().map(entry).collect();
        lines.push(line);
    }
    let listing = cache.list()?;
    for path in listing.entries {
        if !owned.contains(&path) {
            let name = path.file_name().and_then(|s| s.to_str()).unwrap_or_default();
            let kernel = tuner_build::cache::entry_kernel(name).unwrap_or(name).to_owned();
            problems.push(Problem::Stale { kernel, path, reason: "no #[autotune] launcher has this name".into() });
        }
    }
    for temp in listing.temps.into_iter().filter(|t| !t.alive) {
        problems.push(Problem::TempFile { path: temp.path, writer: temp.writer });
    }
    Ok(CrateCheck { kernels, problems, strays: listing.strays, lines })
}

pub fn run(args: CheckArgs, settings: &Settings) -> anyhow::Result<i32> {
    let crates = args.krate.crates()?;
    let (mut kernels, mut problems, mut checked) = (0usize, 0usize, Vec::new());
    for root in &crates.roots {
        let query = args.device.clone().map(|name| DeviceQuery { name, compute_capability: args.cc });
        let found = check_crate(root, settings, query.as_ref())?;
        // A workspace member without launchers is not this tool's business.
        if crates.workspace && found.kernels.is_empty() && found.problems.is_empty() {
            continue;
        }
        kernels += found.kernels.len();
        problems += found.problems.len();
        report(root, &found, args.krate.json);
        checked.push(root.display().to_string());
    }
    if kernels == 0 && problems == 0 {
        let looked = crates.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
        anyhow::bail!(
            "no #[autotune] launcher in {} (looked at {looked}): nothing was checked; pass the manifest of \
             the crate that declares the launchers",
            crates.manifest.display()
        );
    }
    if args.krate.json {
        emit(json!({"type": "summary", "kernels": kernels, "problems": problems, "crates": checked}));
    }
    let crates_text = format!("{} crate(s): {}", checked.len(), checked.join(", "));
    if problems == 0 {
        eprintln!("ok: {kernels} kernel(s) in {crates_text}, every one has a fresh entry");
        Ok(0)
    } else {
        eprintln!("{problems} problem(s) in {kernels} kernel(s) of {crates_text}");
        Ok(1)
    }
}

/// Prints what checking the crate at `root` found: each problem with its fix, and the strays.
fn report(root: &std::path::Path, found: &CrateCheck, json: bool) {
    let manifest = CrateArgs::manifest_of(root);
    let tune = format!("cargo autotune tune --manifest-path {}", manifest.display());
    for p in &found.problems {
        let (text, line) = match p {
            Problem::Miss { kernel, key, sizes } => (
                format!(
                    "miss: kernel `{kernel}` has no entry{} for its current source and attribute (content key {key}); run `{tune}` on a GPU machine and commit the entries",
                    sizes.as_ref().map(|s| format!(" at {s}")).unwrap_or_default()
                ),
                json!({"type": "miss", "kernel": kernel, "content_key": key, "sizes": sizes, "device": null, "fix": tune}),
            ),
            Problem::Fallback { kernel, device, sizes, runs } => (
                format!("fallback: kernel `{kernel}` at {sizes} has no entry for {device}; it runs {runs}; run `{tune}` on that GPU and commit the entries"),
                json!({"type": "fallback", "kernel": kernel, "sizes": sizes, "device": device, "runs": runs, "fix": tune}),
            ),
            Problem::Stale { kernel, path, reason } => (
                format!("stale: {} (kernel `{kernel}`): {reason}; delete it, or run `{tune}`, which replaces it", path.display()),
                json!({"type": "stale", "kernel": kernel, "path": path.display().to_string(), "reason": reason, "fix": tune}),
            ),
            Problem::Invalid { path, reason } => (
                format!("invalid: {reason}"),
                json!({"type": "invalid", "path": path.display().to_string(), "reason": reason, "fix": format!("delete it and run `{tune}`")}),
            ),
            Problem::TempFile { path, writer } => {
                let by = writer.map(|p| format!(" by process {p}, which is gone")).unwrap_or_default();
                (
                    format!("temporary file: {} is left from a write that did not finish{by}; delete it (`rm {}`), and do not commit it", path.display(), path.display()),
                    json!({"type": "temp", "path": path.display().to_string(), "writer": writer, "fix": format!("rm {}", path.display())}),
                )
            }
        };
        eprintln!("{text}");
        if json {
            emit(line);
        }
    }
    for path in &found.strays {
        eprintln!("note: {} is not a cache entry of any launcher; builds ignore it", path.display());
        if json {
            emit(json!({"type": "stray", "path": path.display().to_string()}));
        }
    }
    if json {
        for l in &found.lines {
            emit(l.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuner_build::cache::{cache_key, config_json, Entry, TuningInfo, FORMAT_VERSION};
    use tuner_spec::device::DeviceFingerprint;

    /// A crate with one launcher `scale` and (optionally) a fresh entry for it.
    fn krate(with_entry: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        tuner_build::testing::fixture_crate(dir.path());
        if with_entry {
            let k = scan_crate(dir.path()).unwrap().kernels.remove(0);
            let device =
                DeviceFingerprint { name: "GPU".into(), compute_capability: (9, 0), driver: None, nvrtc: None };
            let default = config_json(k.spec.default_config());
            let entry = Entry {
                format_version: FORMAT_VERSION,
                key: cache_key(&k.source_blake3, &k.spec, &device),
                kernel: k.spec.name.clone(),
                source_blake3: k.source_blake3.clone(),
                spec: k.spec.spec().clone(),
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
                starts: vec![],
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
                Problem::TempFile { .. } => "temp",
                Problem::Fallback { .. } => "fallback",
            })
            .collect()
    }

    #[test]
    fn a_fresh_entry_passes() {
        let dir = krate(true);
        let c = check_crate(dir.path(), &Settings::default(), None).unwrap();
        assert_eq!(c.kernels, ["scale"]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.lines[0]["entries"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn no_entry_is_a_miss() {
        let dir = krate(false);
        assert_eq!(kinds(&check_crate(dir.path(), &Settings::default(), None).unwrap().problems), ["miss"]);
    }

    #[test]
    fn a_changed_kernel_makes_a_stale_entry_and_a_miss() {
        let dir = krate(true);
        std::fs::write(dir.path().join("cuda/scale.cu"), "// v2\n").unwrap();
        let problems = check_crate(dir.path(), &Settings::default(), None).unwrap().problems;
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
        let problems = check_crate(dir.path(), &Settings::default(), None).unwrap().problems;
        assert_eq!(kinds(&problems), ["invalid", "miss", "stale"], "{problems:?}");
        assert!(matches!(&problems[0], Problem::Invalid { reason, .. } if reason.contains("does not allow 65")));
        assert!(matches!(&problems[2], Problem::Stale { reason, .. } if reason.contains("no #[autotune] launcher")));
    }
}
