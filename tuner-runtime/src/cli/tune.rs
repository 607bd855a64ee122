//! `cargo autotune tune`: tunes every cache miss of a crate on this GPU and writes the entries, without
//! building the crate, so a GPU box needs only this binary (built with the `cuda` feature), the crate's
//! sources and a driver.
//!
//! A kernel that already has a fresh entry for this GPU is skipped unless `--force`. A new entry replaces
//! the stale entries of the same kernel and hardware, so the cache directory holds one file per kernel and
//! device and `cargo autotune check` passes afterwards.

use std::path::PathBuf;

use clap::Args;

use super::crate_args::CrateArgs;
use crate::strategy::StrategyKind;

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
    /// The search strategy (default: `$AUTOTUNE_STRATEGY`, else local search).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyKind>,
    /// Evaluations per kernel (default: `$AUTOTUNE_MAX_EVALUATIONS`, else 60).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Seed of the search (default: `$AUTOTUNE_SEED`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print every evaluation.
    #[arg(short, long)]
    pub verbose: bool,
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
    use anyhow::Context as _;
    use serde_json::json;

    use super::json::emit;
    use crate::build::Gpu;
    use crate::cache::{Cache, CACHE_DIR_ENV};
    use crate::scan::scan_crate;
    use crate::tuning::{tune_kernel, TuneOptions};

    let root = args.krate.crate_root()?;
    let scan = scan_crate(&root)?;
    let mut options = TuneOptions::from_env()?;
    options.strategy = args.strategy.unwrap_or(options.strategy);
    options.max_evaluations = args.budget.unwrap_or(options.max_evaluations);
    options.seed = args.seed.unwrap_or(options.seed);
    options.verbose = args.verbose;
    let env_dir = args.cache_dir.clone().or_else(|| std::env::var_os(CACHE_DIR_ENV).map(PathBuf::from));
    let cache = Cache::for_crate(&root, env_dir.as_deref());
    let mut gpu = crate::gpu::CudaGpu::detect().context("no CUDA GPU to tune on")?;
    let device = gpu.fingerprint().clone();
    eprintln!("tuning on {device}");
    let (mut tuned, mut skipped) = (0usize, 0usize);
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
            skipped += 1;
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
        // Older entries of this kernel on this hardware are superseded.
        for (old, _) in found.stale.iter().filter(|(c, _)| c.entry.device.same_hardware(&device)) {
            if old.path != path {
                std::fs::remove_file(&old.path).with_context(|| format!("cannot remove {}", old.path.display()))?;
            }
        }
        for old in found.fresh.iter().filter(|c| c.entry.device.same_hardware(&device) && c.path != path) {
            std::fs::remove_file(&old.path).with_context(|| format!("cannot remove {}", old.path.display()))?;
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
        tuned += 1;
    }
    if args.krate.json {
        emit(json!({"type": "summary", "kernels": scan.kernels.len(), "tuned": tuned, "skipped": skipped}));
    }
    Ok(0)
}
