//! `cargo autotune tune`: tunes every cache miss of a crate on this GPU and writes the entries, without
//! building the crate, so a GPU box needs only this binary (built with the `cuda` feature), the crate's
//! sources and a driver.
//!
//! A kernel that already has a fresh entry for this GPU is skipped unless `--force`. A new entry replaces
//! the stale entries of the same kernel and hardware, so the cache directory holds one file per kernel and
//! device and `cargo autotune check` passes afterwards.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::emit;
use crate::cache::{Cache, CACHE_DIR_ENV};
use crate::scan::scan_crate;
use crate::strategy::StrategyKind;
use crate::tuning::{tune_kernel, TuneOptions};

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
    /// Only this kernel (launcher name); default: every kernel.
    #[arg(long, value_name = "NAME")]
    pub kernel: Option<String>,
    /// Re-tune kernels that already have an entry for this GPU.
    #[arg(long)]
    pub force: bool,
    /// The search strategy (default: `$AUTOTUNE_STRATEGY`, else the surrogate, or the hybrid when built
    /// with the `llm` feature).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyKind>,
    /// Evaluations per kernel (default: `$AUTOTUNE_MAX_EVALUATIONS`, else 60).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Seed of the search (default: `$AUTOTUNE_SEED`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Configs per model round of the surrogate and the hybrid (default: `$AUTOTUNE_BATCH`, else theirs:
    /// one per round for the surrogate). 10 compiles ten configs in parallel: faster, with worse picks.
    #[arg(long)]
    pub batch: Option<usize>,
    /// The tuner's population, which caps every batch (default: `$AUTOTUNE_POPULATION`, else 20).
    #[arg(long)]
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

#[cfg(not(feature = "cuda"))]
pub fn run(_args: TuneArgs) -> anyhow::Result<i32> {
    anyhow::bail!(
        "this cargo-autotune was built without the `cuda` feature, so it cannot tune; install it with \
         `cargo install --path tuner-runtime --features cuda` on the GPU machine"
    )
}

#[cfg(feature = "cuda")]
pub fn run(args: TuneArgs) -> anyhow::Result<i32> {
    use crate::build::Gpu;

    let mut gpu = match &args.devices {
        Some(list) => crate::gpu::CudaGpu::with_devices(Some(&crate::device::parse_devices(list)?)),
        None => crate::gpu::CudaGpu::detect(),
    }
    .context("no CUDA GPU to tune on")?;
    eprintln!("tuning on {} (devices {:?}, one worker each)", gpu.fingerprint(), gpu.devices());
    tune_on(&args, &mut gpu)?;
    Ok(0)
}

/// How many kernels were tuned and how many were already up to date.
// Without `cuda` only the tests drive the loop (through a recorded table).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub tuned: usize,
    pub skipped: usize,
}

/// Tunes the crate's misses on `gpu` (any [`Gpu`](crate::build::Gpu): the real one, or a recorded table
/// in tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub fn tune_on(args: &TuneArgs, gpu: &mut dyn crate::build::Gpu) -> anyhow::Result<Summary> {
    let root = args.krate.crate_root()?;
    let scan = scan_crate(&root)?;
    let mut options = TuneOptions::from_env()?;
    options.strategy = args.strategy.unwrap_or(options.strategy);
    options.max_evaluations = args.budget.unwrap_or(options.max_evaluations);
    options.seed = args.seed.unwrap_or(options.seed);
    options.population_size = args.population.unwrap_or(options.population_size).max(1);
    options.batch = args.batch.or(options.batch);
    options.verbose = args.verbose;
    let env_dir = args.cache_dir.clone().or_else(|| std::env::var_os(CACHE_DIR_ENV).map(PathBuf::from));
    let cache = Cache::for_crate(&root, env_dir.as_deref());
    let device = gpu.fingerprint().clone();
    let mut summary = Summary { tuned: 0, skipped: 0 };
    for k in &scan.kernels {
        let name = &k.spec.name;
        if args.kernel.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        let found = cache.lookup(&k.spec, &k.source_blake3)?;
        if let Some(e) = found.corrupt.first() {
            eprintln!("warning: {e}");
        }
        if let Some(hit) = found.for_device(&device).filter(|_| !args.force) {
            eprintln!("{name}: up to date ({})", hit.path.display());
            summary.skipped += 1;
            continue;
        }
        let source = String::from_utf8_lossy(&k.source).into_owned();
        eprintln!("{name}: tuning ({} evaluations, {:?})", options.max_evaluations, options.strategy);
        let mut objective = gpu
            .objective(&k.spec, &source)
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("kernel `{name}`"))?;
        let entry = tune_kernel(&k.spec, &k.source_blake3, &device, &mut *objective, &options)?;
        drop(objective);
        let path = cache.write(&entry)?;
        // Older entries of this kernel on this hardware are superseded; only the directory written to
        // is cleaned, never one that is only read.
        let superseded = found.stale.iter().map(|(c, _)| c).chain(&found.fresh).filter(|c| {
            c.entry.device.same_hardware(&device) && c.path != path && c.path.starts_with(cache.write_dir())
        });
        for old in superseded {
            std::fs::remove_file(&old.path).with_context(|| format!("cannot remove {}", old.path.display()))?;
            eprintln!("{name}: removed superseded {}", old.path.display());
        }
        let speedup = entry.speedup();
        eprintln!(
            "{name}: best {} {:.4} ms (default {:.4} ms, {}) -> {}",
            serde_json::Value::Object(entry.best.clone()),
            entry.best_time_ms.unwrap_or(f64::NAN),
            entry.default_time_ms.unwrap_or(f64::NAN),
            speedup.map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into()),
            path.display()
        );
        if args.krate.json {
            emit(json!({
                "type": "tuned", "kernel": name, "path": path.display().to_string(), "device": device.name,
                "best": entry.best, "best_time_ms": entry.best_time_ms, "default_time_ms": entry.default_time_ms,
                "speedup": speedup, "evaluations": entry.tuning.evaluations, "wall_seconds": entry.tuning.wall_seconds,
            }));
        }
        summary.tuned += 1;
    }
    if args.krate.json {
        emit(
            json!({"type": "summary", "kernels": scan.kernels.len(), "tuned": summary.tuned, "skipped": summary.skipped}),
        );
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::FakeGpu;
    use crate::cache::{source_hash, Cache};
    use crate::scan::tests::fixture_crate;

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
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let mut gpu = FakeGpu::new(dir.path());
        assert_eq!(tune_on(&args(&root, false), &mut gpu).unwrap(), Summary { tuned: 1, skipped: 0 });
        assert_eq!(tune_on(&args(&root, false), &mut gpu).unwrap(), Summary { tuned: 0, skipped: 1 });
        // The kernel changes: the old entry is stale, and tuning again replaces it.
        std::fs::write(root.join("cuda/scale.cu"), "// v2\n").unwrap();
        assert_eq!(tune_on(&args(&root, false), &mut gpu).unwrap(), Summary { tuned: 1, skipped: 0 });
        let files = Cache::for_crate(&root, None).all_files().unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        let kernel = scan_kernel(&root);
        let found = Cache::for_crate(&root, None).lookup(&kernel.spec, &source_hash(b"// v2\n")).unwrap();
        assert_eq!(found.fresh.len(), 1);
        // --force re-tunes a hit, still leaving one file.
        assert_eq!(tune_on(&args(&root, true), &mut gpu).unwrap(), Summary { tuned: 1, skipped: 0 });
        assert_eq!(Cache::for_crate(&root, None).all_files().unwrap().len(), 1);
    }

    #[test]
    fn entries_in_a_read_only_directory_are_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let mut gpu = FakeGpu::new(dir.path());
        tune_on(&args(&root, false), &mut gpu).unwrap();
        let mut elsewhere = args(&root, true);
        elsewhere.cache_dir = Some(dir.path().join("out"));
        assert_eq!(tune_on(&elsewhere, &mut gpu).unwrap(), Summary { tuned: 1, skipped: 0 });
        assert_eq!(Cache::for_crate(&root, None).all_files().unwrap().len(), 1, "the crate's entry stays");
        assert_eq!(std::fs::read_dir(dir.path().join("out")).unwrap().count(), 1);
    }

    fn scan_kernel(root: &std::path::Path) -> crate::scan::Kernel {
        crate::scan::scan_crate(root).unwrap().kernels.remove(0)
    }
}
