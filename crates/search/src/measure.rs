//! The seam between a tune and what measures it: a [`KernelObjective`] scores a kernel's configs and
//! remembers each one's time, and a [`Gpu`] makes one for a kernel spec on a device.
//!
//! Both sit here, below the build script's driver (`tuner-build`) and the CUDA backend (`tuner-cuda`)
//! that implements them, so neither of those two crates needs the other: the build tunes through the
//! trait, the backend provides it, and tests provide a recorded table ([`Replay`]) instead of a GPU.

use tuner_spec::device::DeviceFingerprint;
use tuner_spec::{CheckedSpec, Config};

use crate::objective::Objective;
use crate::replay::Replay;

/// An objective over a kernel's configs that also reports the time of each config it measured.
pub trait KernelObjective: Objective {
    /// The measured time of `config` in milliseconds, once it has been evaluated and was valid.
    fn time_ms(&self, config: &Config) -> Option<f64>;
    /// What the score measures, for the entry (`1/time`, `GB/s`).
    fn describe(&self) -> String;
}

impl KernelObjective for Replay {
    fn time_ms(&self, config: &Config) -> Option<f64> {
        self.time(config).ok().flatten()
    }

    fn describe(&self) -> String {
        format!("replay of {} (1/time)", self.path().display())
    }
}

/// A GPU the build can tune on. The `cuda` feature provides the real one; tests use recorded tables.
pub trait Gpu {
    fn fingerprint(&self) -> &DeviceFingerprint;
    /// An objective that benchmarks `spec`'s kernel (source `source`) on this GPU.
    fn objective<'a>(
        &'a mut self,
        spec: &CheckedSpec,
        source: &str,
    ) -> Result<Box<dyn KernelObjective + 'a>, Box<dyn std::error::Error + Send + Sync>>;
}
