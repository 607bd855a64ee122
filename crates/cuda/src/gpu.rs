//! The real GPU behind the build script's and `cargo autotune tune`'s [`Gpu`] seam (feature `cuda`).
//!
//! Detection reads the driver's device attributes without creating a context ([`query_device`]); the
//! benchmark is [`CudaBench`], which measures in worker processes. Those workers are this same
//! executable started with `__worker` and `AUTOTUNE_WORKER=1`: `cargo-autotune` has that subcommand, and a
//! build script serves through [`tuner_build::tune_crate`], which checks for the variable first.
//!
//! A host with several GPUs of one model measures on all of them at once, one worker each (devices of
//! another model are left out, said on stderr); `AUTOTUNE_DEVICES=0,1` (or `CUDA_VISIBLE_DEVICES`) picks
//! them explicitly, and an explicit list that mixes models is an error.

use crate::worker::protocol::GpuInfo;
use crate::{select_devices, CudaBench, CudaBenchOptions, CudaError};
use tuner_search::{Gpu, KernelObjective};
use tuner_spec::config::Config;
use tuner_spec::device::DeviceFingerprint;
use tuner_spec::CheckedSpec;

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
        self.evaluations.iter().rev().find(|e| e.config == *config).and_then(|e| e.result.time_ms())
    }

    fn describe(&self) -> String {
        "1/median time (CUDA events, cold L2)".into()
    }
}

/// The visible CUDA devices of one model.
pub struct CudaGpu {
    fingerprint: DeviceFingerprint,
    options: CudaBenchOptions,
}

impl CudaGpu {
    /// The GPUs `requested` (the settings' `AUTOTUNE_DEVICES`), else every visible GPU of device 0's
    /// model; or why there is none (no driver, no device, a list that mixes models).
    pub fn detect(requested: Option<&[usize]>) -> Result<CudaGpu, CudaError> {
        CudaGpu::with_devices(requested)
    }

    /// The GPUs `requested` (one model), or every visible GPU of device 0's model.
    pub fn with_devices(requested: Option<&[usize]>) -> Result<CudaGpu, CudaError> {
        let (chosen, skipped) = select_devices(requested)?;
        for g in &skipped {
            eprintln!("autotune: leaving out device {} ({}): a run measures one GPU model", g.ordinal, g.name);
        }
        let options =
            CudaBenchOptions { devices: chosen.iter().map(|g| g.ordinal).collect(), ..CudaBenchOptions::default() };
        Ok(CudaGpu { fingerprint: DeviceFingerprint::from(&chosen[0]), options })
    }

    /// The device ordinals measured on, one worker each.
    pub fn devices(&self) -> &[usize] {
        &self.options.devices
    }
}

impl Gpu for CudaGpu {
    fn fingerprint(&self) -> &DeviceFingerprint {
        &self.fingerprint
    }

    fn objective<'a>(
        &'a mut self,
        spec: &CheckedSpec,
        source: &str,
    ) -> Result<Box<dyn KernelObjective + 'a>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Box::new(CudaBench::new(spec.clone(), source, self.options.clone())?))
    }
}
