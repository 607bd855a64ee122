//! The real GPU behind the build script's and `cargo autotune tune`'s [`Gpu`] seam (feature `cuda`).
//!
//! Detection reads the driver's device attributes without creating a context ([`query_device`]); the
//! benchmark is [`CudaBench`], which measures in worker processes. Those workers are this same
//! executable started with `__worker` and `AUTOTUNE_WORKER=1`: `cargo-autotune` has that subcommand, and a
//! build script serves through [`crate::build::tune_crate`], which checks for the variable first.
//!
//! `CUDA_VISIBLE_DEVICES` picks the GPU as usual; the first visible device is the one tuned on.

use crate::build::Gpu;
use crate::config::Config;
use crate::cuda::{query_device, CudaBench, CudaBenchOptions, CudaError};
use crate::device::DeviceFingerprint;
use crate::spec::KernelSpec;
use crate::tuning::KernelObjective;
use crate::worker::protocol::{EvalResult, GpuInfo};

impl From<&GpuInfo> for DeviceFingerprint {
    fn from(g: &GpuInfo) -> DeviceFingerprint {
        DeviceFingerprint {
            name: g.name.clone(),
            compute_capability: g.compute_capability,
            driver: Some(g.driver.clone()),
            nvrtc: Some(g.nvrtc.clone()),
        }
    }
}

impl KernelObjective for CudaBench {
    fn time_ms(&self, config: &Config) -> Option<f64> {
        // The latest measurement of the config wins (a config is measured once per run anyway).
        self.evaluations.iter().rev().find(|e| e.config == *config).and_then(|e| match &e.result {
            EvalResult::Ok(m) => Some(m.time_ms),
            EvalResult::Failed(_) => None,
        })
    }

    fn describe(&self) -> String {
        "1/median time (CUDA events, cold L2)".into()
    }
}

/// Device 0 of the visible CUDA devices.
pub struct CudaGpu {
    fingerprint: DeviceFingerprint,
    options: CudaBenchOptions,
}

impl CudaGpu {
    /// The first visible GPU, or why there is none (no driver, no device).
    pub fn detect() -> Result<CudaGpu, CudaError> {
        let info = query_device(0)?;
        Ok(CudaGpu { fingerprint: DeviceFingerprint::from(&info), options: CudaBenchOptions::default() })
    }
}

impl Gpu for CudaGpu {
    fn fingerprint(&self) -> &DeviceFingerprint {
        &self.fingerprint
    }

    fn objective<'a>(
        &'a mut self,
        spec: &KernelSpec,
        source: &str,
    ) -> Result<Box<dyn KernelObjective + 'a>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Box::new(CudaBench::new(spec.clone(), source, self.options.clone())?))
    }
}
