//! A config read from a cache entry on disk rather than baked into the binary: how the comparison
//! examples measure entries that a tune wrote in the same device session (`--entries DIR`), before any
//! rebuild. The entry is read and validated as the build reads it, the config compiled as a launcher
//! compiles one, and its launch geometry comes from the entry's own spec at its sizes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, LaunchConfig};
use tuner_runtime::__private::Kernel;
use tuner_runtime::build::cache::Entry;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The examples' command line: `[DIR] [--entries AUTOTUNE_DIR]`, DIR defaulting to `default_dir`.
pub fn args(default_dir: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entries = match args.iter().position(|a| a == "--entries") {
        Some(i) => Some(PathBuf::from(args.get(i + 1).ok_or("--entries needs a directory")?)),
        None => None,
    };
    let dir = args.first().filter(|a| *a != "--entries").map_or_else(|| PathBuf::from(default_dir), PathBuf::from);
    Ok((dir, entries))
}

/// A compiled config with its launch.
pub struct Loaded {
    pub function: CudaFunction,
    pub launch: LaunchConfig,
    pub config: String,
    pub from: String,
}

/// The best config of `kernel`'s entry in `dir` for the GPU `gpu` at the size point `point` (every
/// named size equal), compiled for `ctx`'s device; `None` when there is no such entry.
pub fn from_entry<T>(
    kernel: &'static Kernel<T>,
    ctx: &Arc<CudaContext>,
    dir: &Path,
    gpu: &str,
    point: &[(&str, i64)],
) -> Result<Option<Loaded>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?.collect::<std::result::Result<_, _>>()?;
    files.sort_by_key(|f| f.file_name());
    for file in files {
        let path = file.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        if !name.starts_with(&format!("{}-", kernel.name())) || !name.ends_with(".json") {
            continue;
        }
        let entry = Entry::parse(&std::fs::read(&path)?, &path)?;
        let at = entry.point();
        let here = point.iter().all(|(n, v)| at.iter().any(|(m, w)| m == n && w == v));
        if entry.kernel != kernel.name() || entry.device.name != gpu || !here {
            continue;
        }
        let checked = entry.spec.check()?;
        let config = entry.best_config(checked.space())?;
        let l = checked.layout().launch(&config)?;
        let defines = tuner_runtime::layout::defines(&config);
        let module =
            tuner_runtime::cuda::compile::load_module(ctx, kernel.name(), kernel.file(), kernel.source(), &defines)?;
        let function = tuner_runtime::cuda::compile::load_function(ctx, &module, kernel.entry())?;
        let launch = LaunchConfig {
            grid_dim: (l.grid[0], l.grid[1], l.grid[2]),
            block_dim: (l.block[0], l.block[1], l.block[2]),
            shared_mem_bytes: l.shared,
        };
        return Ok(Some(Loaded { function, launch, config: format!("{config}"), from: format!("entry {name} (not baked)") }));
    }
    Ok(None)
}
