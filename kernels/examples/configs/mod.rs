//! Configs the comparison examples run beside a launcher's own pick, each compiled as a launcher compiles
//! a config, with its launch geometry from the attribute's expressions (never written out by hand):
//!
//! - [`default`]: the declared default, which the examples time against the tuned pick;
//! - [`from_entry`]: a cache entry's best config read from disk rather than baked into the binary: how
//!   the examples measure entries that a tune wrote in the same device session (`--entries DIR`), before
//!   any rebuild. The entry is read and validated as the build reads it, and its geometry comes from the
//!   entry's own spec at its sizes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, LaunchConfig};
use tuner_runtime::__private::Kernel;
use tuner_runtime::build::cache::{source_hash, Entry};
use tuner_runtime::cuda::launch_config;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The examples' command line: `[DIR] [--entries AUTOTUNE_DIR]` in either order, DIR defaulting to
/// `default_dir`.
pub fn args(default_dir: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let mut dir = None;
    let mut entries = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => entries = Some(PathBuf::from(args.next().ok_or("--entries needs a directory")?)),
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument `{a}`; usage: [DIR] [--entries AUTOTUNE_DIR]").into()),
        }
    }
    Ok((dir.unwrap_or_else(|| PathBuf::from(default_dir)), entries))
}

/// A compiled config with its launch.
pub struct Loaded {
    pub function: CudaFunction,
    pub launch: LaunchConfig,
    /// The config's parameters, and how the tables print it.
    #[allow(dead_code)] // versus reads them; attention_versus does not
    pub params: tuner_runtime::Config,
    pub config: String,
    pub from: String,
}

impl Loaded {
    #[allow(dead_code)] // attention_versus prints them; versus does not
    /// The registers per thread, local memory per thread (spills) and dynamic shared memory per block.
    pub fn resources(&self) -> Result<(i32, i32, u32)> {
        Ok((self.function.num_regs()?, self.function.local_size_bytes()?, self.launch.shared_mem_bytes))
    }
}

/// The best config of `kernel`'s entry in `dir` for the GPU `gpu` at the size point `point` (every
/// named size equal) and for the kernel source this binary embeds, compiled for `ctx`'s device; `None`
/// when there is no such entry, an error when there are several.
pub fn from_entry<T>(
    kernel: &'static Kernel<T>,
    ctx: &Arc<CudaContext>,
    dir: &Path,
    gpu: &str,
    point: &[(&str, i64)],
) -> Result<Option<Loaded>> {
    let Some((name, entry)) = find_entry(kernel, dir, Some(gpu), point)? else { return Ok(None) };
    let checked = entry.spec.check()?;
    let config = entry.best_config(checked.space())?;
    let launch = launch_config(checked.layout().launch(&config)?.geometry());
    let function = compile(kernel, ctx, &config)?;
    Ok(Some(Loaded {
        function,
        launch,
        config: format!("{config}"),
        params: config,
        from: format!("entry {name} (not baked)"),
    }))
}

/// `kernel`'s entry in `dir` for the GPU `gpu` (any GPU's, the first by file name, when `None`) at the size
/// point `point` and for the kernel source this binary embeds, with its file name; `None` when there is
/// none, an error when a named GPU has several.
pub fn find_entry<T>(
    kernel: &'static Kernel<T>,
    dir: &Path,
    gpu: Option<&str>,
    point: &[(&str, i64)],
) -> Result<Option<(String, Entry)>> {
    let source = source_hash(kernel.source().as_bytes());
    let mut found: Option<(String, Entry)> = None;
    let mut files: Vec<_> = std::fs::read_dir(dir)?.map(|f| f.map(|f| f.path())).collect::<std::io::Result<_>>()?;
    files.sort();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        if !name.starts_with(&format!("{}-", kernel.name())) || !name.ends_with(".json") {
            continue;
        }
        let entry = Entry::parse(&std::fs::read(&path)?, &path)?;
        let at = entry.point();
        let here = point.iter().all(|(n, v)| at.iter().any(|(m, w)| m == n && w == v));
        // An entry of another source (a stale one beside the new) would run its config on this source.
        let device = match gpu {
            Some(g) => entry.device.name == g,
            None => true,
        };
        if entry.kernel != kernel.name() || !device || !here || entry.source_blake3 != source {
            continue;
        }
        match (&found, gpu) {
            (Some((other, _)), Some(gpu)) => {
                return Err(format!("{other} and {name} are both entries for {gpu} at {point:?}").into());
            }
            (Some(_), None) => {}
            (None, _) => found = Some((name, entry)),
        }
    }
    Ok(found)
}

/// The declared default with its geometry at `sizes` (the kernel's size variables, in order).
pub fn default<T: std::fmt::Debug>(
    kernel: &'static Kernel<T>,
    ctx: &Arc<CudaContext>,
    sizes: &[i64],
) -> Result<Loaded> {
    // A GPU no entry is near: the table answers with the default and its launch geometry.
    let pick = kernel.table().choose_for("(no entries)", (0, 0), sizes)?;
    let params = kernel.table().config(pick.index);
    let function = compile(kernel, ctx, &params)?;
    let launch = launch_config(pick.geometry);
    Ok(Loaded { function, launch, params, config: format!("{:?}", pick.config), from: "declared default".to_owned() })
}

/// `config` of `kernel`, compiled with NVRTC and loaded on `ctx`'s device.
pub fn compile<T>(
    kernel: &'static Kernel<T>,
    ctx: &Arc<CudaContext>,
    config: &tuner_runtime::Config,
) -> Result<CudaFunction> {
    let defines = tuner_runtime::layout::defines(config);
    let module =
        tuner_runtime::cuda::compile::load_module(ctx, kernel.name(), kernel.file(), kernel.source(), &defines)?;
    Ok(tuner_runtime::cuda::compile::load_function(ctx, &module, kernel.entry())?)
}
