//! `cargo autotune tune`: tunes every cache miss of a crate on this GPU and writes the entries, without
//! building the crate, so a GPU box needs only this binary (built with the `cuda` feature), the crate's
//! sources and a driver.
//!
//! Each size point of a kernel (`sizes(…)`, else the bench sizes) is tuned on its own; a point that
//! already has a fresh entry for this GPU is skipped unless `--force`. Each tune measures the default and
//! then the best configs of the kernel's other entries first (warm starts: this GPU's neighbouring sizes,
//! other GPUs at the same size), and prints its wall time. A new entry replaces the stale entries of the
//! same kernel, hardware and point (and those at points the kernel no longer declares), so the cache
//! directory holds one file per kernel, device and point and `cargo autotune check` passes afterwards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::emit;
use crate::interrupt;
#[cfg(feature = "cuda")]
use crate::interrupt::INTERRUPTED;
use tuner_build::cache::Cache;
use tuner_build::scan::{scan_crate, Scan};
use tuner_build::tuning::{tune_point, PointError, TuneOptions, TuningError};
use tuner_build::Settings;
use tuner_search::strategy::StrategyKind;
use tuner_search::Gpu;
use tuner_spec::spec::point_text;

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
    /// Only this kernel (launcher name); default: every kernel. A name no launcher has is an error.
    #[arg(long, value_name = "NAME")]
    pub kernel: Option<String>,
    /// Re-tune kernels that already have an entry for this GPU.
    #[arg(long)]
    pub force: bool,
    /// The search strategy: random, de, local, surrogate, llm or hybrid (default: `$AUTOTUNE_STRATEGY`,
    /// else the hybrid, which is the surrogate when no LLM endpoint is configured).
    #[arg(long, value_parser = crate::args::strategy)]
    pub strategy: Option<StrategyKind>,
    /// Evaluations per kernel, at least 1 (default: `$AUTOTUNE_MAX_EVALUATIONS`, else 60).
    #[arg(long, value_parser = crate::args::budget)]
    pub budget: Option<usize>,
    /// Seed of the search (default: `$AUTOTUNE_SEED`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Configs per model round of the surrogate and the hybrid (default: `$AUTOTUNE_BATCH`, else theirs:
    /// one per round for the surrogate). 10 compiles ten configs in parallel: faster, with worse picks.
    #[arg(long, value_parser = crate::args::batch)]
    pub batch: Option<usize>,
    /// The tuner's population, which caps every batch (default: `$AUTOTUNE_POPULATION`, else 20).
    #[arg(long, value_parser = crate::args::population)]
    pub population: Option<usize>,
    /// Print every evaluation.
    #[arg(short, long)]
    pub verbose: bool,
    /// CUDA devices to measure on, one worker each (`0,1`); default: `AUTOTUNE_DEVICES`, else every
    /// visible GPU of device 0's model.
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Write entries here instead of the crate's cache directory.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// What a tune will do, settled before any GPU time is spent: the crates and kernels (a `--kernel` no
/// launcher has is an error), the cache directories (each one must be writable), the search options.
pub struct Plan {
    pub crates: Vec<(PathBuf, Scan, Cache)>,
    pub options: TuneOptions,
}

impl Plan {
    pub fn new(args: &TuneArgs, settings: &Settings) -> anyhow::Result<Plan> {
        let found = args.krate.crates()?;
        let mut crates = Vec::new();
        for root in &found.roots {
            let scan = scan_crate(root)?;
            if scan.kernels.is_empty() && found.workspace {
                continue;
            }
            let cache_dir = args.cache_dir.as_deref().or(settings.cache_dir.as_deref());
            crates.push((root.clone(), scan, Cache::for_crate(root, cache_dir)));
        }
        let names: Vec<&str> =
            crates.iter().flat_map(|(_, s, _)| s.kernels.iter().map(|k| k.spec.name.as_str())).collect();
        if names.is_empty() {
            bail!("no #[autotune] launcher in {}: nothing to tune", found.manifest.display());
        }
        if let Some(only) = &args.kernel {
            if !names.contains(&only.as_str()) {
                bail!("no #[autotune] launcher is named `{only}` (launchers: {})", names.join(", "));
            }
        }
        for (_, _, cache) in &crates {
            ensure_writable(cache.write_dir())?;
        }
        let mut options = settings.tune_options();
        options.strategy = args.strategy.unwrap_or(options.strategy);
        options.max_evaluations = args.budget.unwrap_or(options.max_evaluations);
        options.seed = args.seed.unwrap_or(options.seed);
        options.population_size = args.population.unwrap_or(options.population_size);
        options.batch = args.batch.or(options.batch);
        options.verbose = args.verbose;
        options.stop = Some(interrupt::flag());
        Ok(Plan { crates, options })
    }
}

/// Creates `dir` and writes (then removes) a file there, so a read-only cache fails now, not after the
/// GPU time is spent.
fn ensure_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".autotune-write-check.{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&probe, b""))
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "cannot write to the cache directory {}; tuning would measure and then lose the results \
                 (make it writable, or pass --cache-dir)",
                dir.display()
            )
        })
}

#[cfg(not(feature = "cuda"))]
pub fn run(args: TuneArgs, settings: &Settings) -> anyhow::Result<i32> {
    Plan::new(&args, settings)?;
    bail!(
        "this cargo-autotune was built without the `cuda` feature, so it cannot tune; install it with \
         `cargo install --path crates/cli --features cuda` on the GPU machine"
    )
}

#[cfg(feature = "cuda")]
pub fn run(args: TuneArgs, settings: &Settings) -> anyhow::Result<i32> {
    let plan = Plan::new(&args, settings)?;
    let devices = match &args.devices {
        Some(list) => Some(tuner_spec::device::parse_devices(list).context("--devices")?),
        None => settings.devices.clone(),
    };
    let mut gpu = tuner_cuda::gpu::CudaGpu::detect(devices.as_deref()).context("no CUDA GPU to tune on")?;
    eprintln!("tuning on {} (devices {:?}, one worker each)", gpu.fingerprint(), gpu.devices());
    let summary = tune_on(&args, &plan, &mut gpu)?;
    Ok(if summary.interrupted {
        INTERRUPTED
    } else if summary.failed > 0 {
        1
    } else {
        0
    })
}

/// How many size points were tuned, were already up to date, or failed.
// Without `cuda` only the tests drive the loop (through a recorded table).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub tuned: usize,
    pub skipped: usize,
    /// Points whose tune failed (the others were still tuned).
    pub failed: usize,
    /// Whether Ctrl-C stopped the tune (the kernels tuned before it are written).
    pub interrupted: bool,
}

/// Tunes the plan's misses on `gpu` (any [`Gpu`]: the real one, or a recorded table in tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub fn tune_on(args: &TuneArgs, plan: &Plan, gpu: &mut dyn Gpu) -> anyhow::Result<Summary> {
    let options = &plan.options;
    let device = gpu.fingerprint().clone();
    let mut summary = Summary { tuned: 0, skipped: 0, failed: 0, interrupted: false };
    let mut kernels = 0;
    'crates: for (_, scan, cache) in &plan.crates {
        for k in &scan.kernels {
            let name = &k.spec.name;
            if args.kernel.as_ref().is_some_and(|only| only != name) {
                continue;
            }
            kernels += 1;
            let found = cache.lookup(&k.spec, &k.source_blake3)?;
            if let Some(e) = found.corrupt.first() {
                eprintln!("warning: {e}");
            }
            let points = k.spec.points();
            let sized =
                |p: &[(String, i64)]| if points.len() > 1 { format!(" at {}", point_text(p)) } else { String::new() };
            let mut fresh = found.fresh.clone();
            for point in &points {
                if let Some(hit) = found.for_point(&device, point).filter(|_| !args.force) {
                    eprintln!("{name}{}: up to date ({})", sized(point), hit.path.display());
                    summary.skipped += 1;
                    continue;
                }
                let started = std::time::Instant::now();
                let announce = |warm: &[tuner_build::tuning::WarmStart]| {
                    eprintln!(
                        "{name} at {}: tuning ({} evaluations, {}{})",
                        point_text(point),
                        options.max_evaluations,
                        options.strategy.name(),
                        if warm.is_empty() { String::new() } else { format!(", {} warm starts", warm.len()) }
                    );
                };
                let entry = match tune_point(k, point, gpu, options, &fresh, announce) {
                    Ok(entry) => entry,
                    Err(PointError::Tuning(e @ TuningError::Interrupted { .. })) => {
                        eprintln!("{e}");
                        summary.interrupted = true;
                        break 'crates;
                    }
                    Err(e) => {
                        let e = anyhow::Error::from(e).context(format!("kernel `{name}`"));
                        // One point that cannot be tuned (a kernel that does not compile on this GPU, a
                        // reference that fails) does not cost the others their tune.
                        eprintln!("error: {name}{}: {e:#}; going on with the other sizes and kernels", sized(point));
                        if args.krate.json {
                            emit(
                                json!({"type": "failed", "kernel": name, "sizes": point_text(point), "error": format!("{e:#}")}),
                            );
                        }
                        summary.failed += 1;
                        continue;
                    }
                };
                let path = cache.write(&entry)?;
                // Older entries of this kernel on this hardware at this point are superseded; only the
                // directory written to is cleaned, never one that is only read.
                let declared = k.spec.points();
                let superseded = found.stale.iter().map(|(c, _)| c).chain(&found.fresh).filter(|c| {
                    let undeclared = !declared.iter().any(|p| p.as_slice() == c.entry.point());
                    c.entry.device.same_hardware(&device)
                        && (c.entry.point() == point.as_slice() || undeclared)
                        && c.path != path
                        && c.path.starts_with(cache.write_dir())
                });
                for old in superseded {
                    if old.path.exists() {
                        std::fs::remove_file(&old.path)
                            .with_context(|| format!("cannot remove {}", old.path.display()))?;
                        eprintln!("{name}: removed superseded {}", old.path.display());
                    }
                }
                let speedup = entry.speedup();
                let wall = started.elapsed().as_secs_f64();
                eprintln!(
                    "{name}{}: best {} {:.4} ms (default {:.4} ms, {}) in {wall:.1} s -> {}",
                    sized(point),
                    serde_json::Value::Object(entry.best.clone()),
                    entry.best_time_ms.unwrap_or(f64::NAN),
                    entry.default_time_ms.unwrap_or(f64::NAN),
                    speedup.map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into()),
                    path.display()
                );
                if args.krate.json {
                    let sizes: serde_json::Map<String, serde_json::Value> =
                        point.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
                    emit(json!({
                        "type": "tuned", "kernel": name, "sizes": sizes, "path": path.display().to_string(),
                        "device": device.name, "best": entry.best, "best_time_ms": entry.best_time_ms,
                        "default_time_ms": entry.default_time_ms, "speedup": speedup,
                        "evaluations": entry.tuning.evaluations, "wall_seconds": wall,
                        "starts": entry.starts,
                    }));
                }
                fresh.retain(|c| !(c.entry.device.same_hardware(&device) && c.entry.point() == point.as_slice()));
                fresh.push(tuner_build::cache::Cached { path, entry });
                summary.tuned += 1;
            }
        }
    }
    if args.krate.json {
        emit(json!({
            "type": "summary", "kernels": kernels, "tuned": summary.tuned, "skipped": summary.skipped, "failed": summary.failed,
            "interrupted": summary.interrupted,
        }));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuner_build::cache::source_hash;
    use tuner_build::testing::{fixture_crate, FakeGpu};

    fn args(root: &std::path::Path, force: bool) -> TuneArgs {
        TuneArgs {
            krate: CrateArgs { manifest_path: Some(root.join("Cargo.toml")), package: None, json: false },
            kernel: None,
            force,
            strategy: None,
            budget: Some(5),
            seed: None,
            batch: None,
            population: None,
            verbose: false,
            devices: None,
            cache_dir: None,
        }
    }

    #[test]
    fn tunes_misses_skips_hits_and_replaces_superseded_entries() {
        let (_dir, root, mut gpu) = krate();
        assert_eq!(
            tune(&args(&root, false), &mut gpu).unwrap(),
            Summary { tuned: 1, skipped: 0, failed: 0, interrupted: false }
        );
        assert_eq!(
            tune(&args(&root, false), &mut gpu).unwrap(),
            Summary { tuned: 0, skipped: 1, failed: 0, interrupted: false }
        );
        // The kernel changes: the old entry is stale, and tuning again replaces it.
        std::fs::write(root.join("cuda/scale.cu"), "// v2\n").unwrap();
        assert_eq!(
            tune(&args(&root, false), &mut gpu).unwrap(),
            Summary { tuned: 1, skipped: 0, failed: 0, interrupted: false }
        );
        let files = Cache::for_crate(&root, None).all_files().unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        let kernel = scan_kernel(&root);
        let found = Cache::for_crate(&root, None).lookup(&kernel.spec, &source_hash(b"// v2\n")).unwrap();
        assert_eq!(found.fresh.len(), 1);
        // --force re-tunes a hit, still leaving one file.
        assert_eq!(
            tune(&args(&root, true), &mut gpu).unwrap(),
            Summary { tuned: 1, skipped: 0, failed: 0, interrupted: false }
        );
        assert_eq!(Cache::for_crate(&root, None).all_files().unwrap().len(), 1);
    }

    #[test]
    fn entries_in_a_read_only_directory_are_never_removed() {
        let (dir, root, mut gpu) = krate();
        tune(&args(&root, false), &mut gpu).unwrap();
        let mut elsewhere = args(&root, true);
        elsewhere.cache_dir = Some(dir.path().join("out"));
        assert_eq!(
            tune(&elsewhere, &mut gpu).unwrap(),
            Summary { tuned: 1, skipped: 0, failed: 0, interrupted: false }
        );
        assert_eq!(Cache::for_crate(&root, None).all_files().unwrap().len(), 1, "the crate's entry stays");
        assert_eq!(std::fs::read_dir(dir.path().join("out")).unwrap().count(), 1);
    }

    /// A kernel tuned at two sizes gets one entry per size; the second tune starts from the first's
    /// best config (this GPU's neighbouring size), and another GPU's tune starts from this one's at the
    /// same size; each entry records where its starts came from.
    #[test]
    fn every_size_is_tuned_and_warm_started_from_the_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let launcher = root.join("src/nested/scale.rs");
        let text = std::fs::read_to_string(&launcher).unwrap();
        std::fs::write(
            &launcher,
            text.replace("bench(n = 1 << 20", "sizes(n = [1 << 16, 1 << 20]), bench(n = 1 << 20"),
        )
        .unwrap();
        let mut gpu = FakeGpu::new(dir.path());
        let s = tune(&args(&root, false), &mut gpu).unwrap();
        assert_eq!(s, Summary { tuned: 2, skipped: 0, failed: 0, interrupted: false });
        let cache = Cache::for_crate(&root, None);
        let kernel = scan_kernel(&root);
        let found = cache.lookup(&kernel.spec, &kernel.source_blake3).unwrap();
        assert_eq!(found.fresh.len(), 2);
        let small = found.fresh.iter().find(|c| c.entry.point()[0].1 == 1 << 16).expect("the 2^16 entry");
        let big = found.fresh.iter().find(|c| c.entry.point()[0].1 == 1 << 20).expect("the 2^20 entry");
        assert!(small.path.file_name().unwrap().to_str().unwrap().starts_with("scale-fake-gpu-n65536-"));
        // The first size started from the default alone (nothing to warm-start from)...
        assert!(small.entry.starts.is_empty(), "{:?}", small.entry.starts);
        // ... the second from the default and, unless they are the same config, the first's best.
        if small.entry.best != big.entry.default {
            let from: Vec<&str> = big.entry.starts.iter().map(|s| s.from.as_str()).collect();
            assert_eq!(from, ["default", small.path.file_name().unwrap().to_str().unwrap()]);
            assert!(big.entry.starts.iter().all(|s| s.time_ms.is_some()));
        }
        // Both are up to date now.
        assert_eq!(
            tune(&args(&root, false), &mut gpu).unwrap(),
            Summary { tuned: 0, skipped: 2, failed: 0, interrupted: false }
        );
        // Another GPU of the same compute capability starts from this one's entries, the same size first.
        let mut other = FakeGpu::named(dir.path(), "Fake GPU Two");
        assert_eq!(tune(&args(&root, false), &mut other).unwrap().tuned, 2);
        let found = cache.lookup(&kernel.spec, &kernel.source_blake3).unwrap();
        assert_eq!(found.fresh.len(), 4);
        let two_small = found
            .fresh
            .iter()
            .find(|c| c.entry.device.name == "Fake GPU Two" && c.entry.point()[0].1 == 1 << 16)
            .expect("the second GPU's 2^16 entry");
        let best_small = &small.entry.best;
        if *best_small != two_small.entry.default {
            let first_warm = two_small.entry.starts.get(1).expect("a warm start");
            assert_eq!(&first_warm.config, best_small, "{:?}", two_small.entry.starts);
        }
    }

    /// An entry at a size the kernel no longer declares is replaced too, whatever else made it stale
    /// (here the source changed as well), so `check` passes after `tune`.
    #[test]
    fn entries_at_sizes_no_longer_declared_are_removed() {
        let (_dir, root, mut gpu) = krate();
        tune(&args(&root, false), &mut gpu).unwrap();
        let launcher = root.join("src/nested/scale.rs");
        let text = std::fs::read_to_string(&launcher).unwrap();
        std::fs::write(&launcher, text.replace("bench(n = 1 << 20", "bench(n = 1 << 21")).unwrap();
        std::fs::write(root.join("cuda/scale.cu"), "// v2\n").unwrap();
        assert_eq!(tune(&args(&root, false), &mut gpu).unwrap().tuned, 1);
        let files = Cache::for_crate(&root, None).all_files().unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].file_name().unwrap().to_str().unwrap().contains("-n2097152-"), "{files:?}");
        let c = crate::check::check_crate(&root, &Settings::default(), None).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    /// A fixture crate with a manifest, in a fresh directory, and a fake GPU.
    fn krate() -> (tempfile::TempDir, std::path::PathBuf, FakeGpu) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let gpu = FakeGpu::new(dir.path());
        (dir, root, gpu)
    }

    fn tune(args: &TuneArgs, gpu: &mut FakeGpu) -> anyhow::Result<Summary> {
        tune_on(args, &Plan::new(args, &Settings::default())?, gpu)
    }

    #[test]
    fn a_kernel_no_launcher_has_and_a_read_only_cache_fail_before_any_gpu_work() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let mut typo = args(&root, false);
        typo.kernel = Some("scal".into());
        let e = Plan::new(&typo, &Settings::default()).err().expect("a typo is an error");
        assert!(format!("{e:#}").contains("no #[autotune] launcher is named `scal` (launchers: scale)"), "{e:#}");
        // A cache directory that cannot be created (its parent is a file) is refused up front.
        std::fs::write(dir.path().join("file"), "").unwrap();
        let mut read_only = args(&root, false);
        read_only.cache_dir = Some(dir.path().join("file/cache"));
        let e = Plan::new(&read_only, &Settings::default()).err().expect("an unwritable cache is an error");
        assert!(format!("{e:#}").contains("cannot write to the cache directory"), "{e:#}");
    }

    fn scan_kernel(root: &std::path::Path) -> tuner_build::scan::Kernel {
        tuner_build::scan::scan_crate(root).unwrap().kernels.remove(0)
    }
}
