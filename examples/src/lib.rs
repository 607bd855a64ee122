//! Shared plumbing of the examples (`cargo run -p autotune-examples --example vector_add`): where a
//! kernel's spec and measurements come from.
//!
//! The spec is read from the annotated launcher in `kernels/src/<name>.rs`, exactly as the build script
//! reads it. Measurements come from one of two places:
//!
//! - with no GPU (the default), a recorded table of real H100 measurements, `tables/h100/<name>.json`
//!   (Kernel Tuner's cache-file format), replayed: each config scores `1 / time` as it did on the H100;
//! - with `--gpu` (built with `--features cuda`), the real benchmark: the kernel is compiled with NVRTC for
//!   each config and timed on the GPU, its output checked against the default config's.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tuner_runtime::build::scan::scan_crate;
use tuner_runtime::CheckedSpec;
#[cfg(feature = "cuda")]
use tuner_runtime::Objective;
use tuner_runtime::{Config, Outcome, Replay, Space};

/// Where the measurements come from.
pub enum Measurements {
    Replay(Replay),
    #[cfg(feature = "cuda")]
    Gpu(Box<tuner_runtime::cuda::CudaBench>),
}

/// A kernel of the `kernels` crate, ready to be tuned.
pub struct Kernel {
    pub spec: CheckedSpec,
    pub measurements: Measurements,
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the examples crate is in the workspace").to_owned()
}

impl Kernel {
    /// Loads launcher `name` of the `kernels` crate, measured on the GPU when `--gpu` was passed.
    pub fn load(name: &str) -> anyhow::Result<Kernel> {
        // The GPU benchmark measures in worker processes that are this executable started again with the
        // worker argument: then it serves, and exits, instead of running the example.
        #[cfg(feature = "cuda")]
        if let Some(code) = tuner_runtime::cuda::serve::serve_if_worker_arg() {
            std::process::exit(code);
        }
        let gpu = std::env::args().any(|a| a == "--gpu");
        let kernels = workspace().join("kernels");
        let scan = scan_crate(&kernels)?;
        let found = scan.kernels.into_iter().find(|k| k.spec.name == name);
        let k = found.with_context(|| format!("no #[autotune] launcher `{name}` in {}", kernels.display()))?;
        let mut spec = k.spec.into_spec();
        let measurements = if gpu { Self::gpu(&spec, &k.source)? } else { Self::replay(name)? };
        // Without the `cuda` feature a replay is the only kind of measurement.
        #[allow(irrefutable_let_patterns)]
        if let Measurements::Replay(r) = &measurements {
            // A table may be recorded at other sizes than the attribute's (SGEMM at 2048³): throughput is
            // computed for the sizes that were measured.
            for (size, value) in spec.bench.sizes.iter_mut() {
                if let Some(v) = r.table().problem_size.get(size.as_str()).and_then(|v| v.as_i64()) {
                    *value = v;
                }
            }
        }
        Ok(Kernel { spec: spec.check()?, measurements })
    }

    fn replay(name: &str) -> anyhow::Result<Measurements> {
        let table = workspace().join("tables/h100").join(format!("{name}.json"));
        let replay = Replay::load(&table).with_context(|| {
            format!("no recorded measurements for `{name}`; record them on a GPU with `cargo autotune record --spec kernels/src/{name}.rs --out {}`, or pass --gpu", table.display())
        })?;
        eprintln!("measurements: {} ({}, replayed, no GPU needed)", table.display(), replay.table().device_name);
        Ok(Measurements::Replay(replay))
    }

    #[cfg(feature = "cuda")]
    fn gpu(spec: &tuner_runtime::KernelSpec, source: &[u8]) -> anyhow::Result<Measurements> {
        let source = String::from_utf8_lossy(source);
        let bench = tuner_runtime::cuda::CudaBench::new(spec.check()?, &source, Default::default())?;
        eprintln!("measurements: {} (live)", bench.device.name);
        Ok(Measurements::Gpu(Box::new(bench)))
    }

    #[cfg(not(feature = "cuda"))]
    fn gpu(_: &tuner_runtime::KernelSpec, _: &[u8]) -> anyhow::Result<Measurements> {
        anyhow::bail!("--gpu needs the `cuda` feature: cargo run -p autotune-examples --features cuda --example …")
    }

    /// The space to search: the recorded configs when replaying, the declared space on a GPU.
    pub fn space(&self) -> anyhow::Result<Space> {
        Ok(match &self.measurements {
            Measurements::Replay(r) => r.space().clone(),
            #[cfg(feature = "cuda")]
            Measurements::Gpu(b) => b.space().clone(),
        })
    }

    /// The seed's objective convention: higher is better, 0.0 for an invalid config.
    pub fn score(&mut self, config: &Config) -> f64 {
        let outcome = match &mut self.measurements {
            Measurements::Replay(r) => r.outcome(config),
            #[cfg(feature = "cuda")]
            Measurements::Gpu(b) => b.evaluate(config),
        };
        match outcome {
            Outcome::Score(s) => s,
            Outcome::Invalid(_) => 0.0,
        }
    }

    /// The best recorded config and its time, when replaying.
    pub fn optimum(&self) -> Option<(Config, f64)> {
        match &self.measurements {
            Measurements::Replay(r) => {
                let (time, config) = r.optimum();
                Some((config, time))
            }
            #[cfg(feature = "cuda")]
            Measurements::Gpu(_) => None,
        }
    }

    /// The default config the attribute declares.
    pub fn default_config(&self) -> anyhow::Result<Config> {
        Ok(self.spec.default_config().clone())
    }

    /// Throughput of a config that ran in `time_ms`: GB/s and TFLOP/s where the spec gives bytes and flops.
    pub fn throughput(&self, config: &Config, time_ms: f64) -> String {
        let Ok(launch) = self.spec.layout().launch(config) else { return String::new() };
        let mut parts = Vec::new();
        if let Some(b) = launch.bytes {
            parts.push(format!("{:.0} GB/s", b / time_ms / 1e6));
        }
        if let Some(f) = launch.flops {
            parts.push(format!("{:.1} TFLOP/s", f / time_ms / 1e9));
        }
        parts.join(", ")
    }
}
