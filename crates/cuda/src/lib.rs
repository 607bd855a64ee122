//! Real GPU benchmarking through cudarc: NVRTC compile, launch from a bench spec, timing, verification,
//! device fingerprint. Behind the `cuda` feature; the driver and NVRTC are loaded at run time, so a binary
//! built with this feature still starts (and says why) on a machine without CUDA.
//!
//! The work is split across two processes (see [`crate::worker`] for why): the parent
//! ([`CudaBench`], an [`Objective`](tuner_search::Objective)) compiles each batch with NVRTC in parallel child
//! processes, one per CPU ([`compile`]; NVRTC serialises compiles within a process), and hands the cubins
//! to a pool of worker processes; each worker ([`worker`]) owns one GPU context and measures one config at
//! a time ([`bench`]). `cargo autotune record` overlaps the two: batch k + 1 compiles while batch k is
//! measured.
//!
//! What a measurement is ([`bench`]): the outputs are poisoned, the kernel runs once and its outputs are
//! compared with the reference config's; then it is warmed up and timed with CUDA events, each timed
//! launch preceded by a write to a buffer twice the size of the L2 cache, so every launch starts from
//! cold caches as it would inside a real program (otherwise a kernel whose inputs fit in L2 is timed
//! on cache hits, the way Triton's `do_bench` avoids). The score is the median of at least five such
//! launches, which ignores the odd launch delayed by a clock change or a preemption; min and max are kept
//! so a table shows how noisy each config was.

// A `CudaError` keeps its context inline (the NVRTC log, the defines, the spec problem): it is made at
// most once per config of a tune, never on a launch's hot path, so its size does not matter; the
// launch path's own error (`tuner_runtime::LaunchError`) boxes it.
#![allow(clippy::result_large_err)]

pub mod bench;
pub mod compile;
pub mod device;
pub mod gpu;
pub mod objective;
pub mod prefetch;
pub mod serve;
pub mod verify;
pub mod worker;

pub use compile::{Compiled, Compiler};

/// cudarc's launch configuration for a config's grid, block and dynamic shared memory.
pub fn launch_config(g: tuner_spec::dispatch::Geometry) -> cudarc::driver::LaunchConfig {
    cudarc::driver::LaunchConfig {
        grid_dim: (g.grid[0], g.grid[1], g.grid[2]),
        block_dim: (g.block[0], g.block[1], g.block[2]),
        shared_mem_bytes: g.shared,
    }
}
pub use device::{query_device, select_devices};
pub use objective::{CudaBench, CudaBenchOptions, Evaluation};

use cudarc::driver::DriverError;

use crate::worker::PoolError;
use tuner_spec::layout::LayoutError;
use tuner_spec::space::SpaceError;
use tuner_spec::spec::SpecError;

/// What can go wrong on the CUDA side.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error("the CUDA {0} library was not found: install the NVIDIA driver and CUDA toolkit, or set LD_LIBRARY_PATH")]
    NoLibrary(&'static str),
    #[error("CUDA driver call `{call}` failed with {name}")]
    Driver {
        call: &'static str,
        name: String,
        #[source]
        source: DriverError,
    },
    #[error("NVRTC could not compile kernel `{kernel}` with {}\n{log}", defines.join(" "))]
    Compile { kernel: String, defines: Vec<String>, log: String },
    #[error("NVRTC call `{call}` failed: {message}")]
    Nvrtc { call: &'static str, message: String },
    #[error("cannot read kernel source {path}")]
    Source {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Space(#[from] SpaceError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("the reference config {config} of kernel `{kernel}` failed: {reason}")]
    Reference { kernel: String, config: String, reason: String },
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("worker protocol: {0}")]
    Protocol(String),
    #[error(transparent)]
    Devices(#[from] tuner_spec::device::DeviceChoiceError),
}

impl CudaError {
    /// The driver's name for the error (`CUDA_ERROR_ILLEGAL_ADDRESS`), when it is a driver error.
    pub fn driver_name(&self) -> Option<&str> {
        match self {
            CudaError::Driver { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Wraps a driver result with the name of the call.
pub(crate) trait DriverContext<T> {
    fn call(self, call: &'static str) -> Result<T, CudaError>;
}

impl<T> DriverContext<T> for Result<T, DriverError> {
    fn call(self, call: &'static str) -> Result<T, CudaError> {
        self.map_err(|source| CudaError::Driver { call, name: format!("{:?}", source.0), source })
    }
}

/// NVRTC's name for the real architecture of a device of compute capability `(major, minor)`. From Hopper
/// on it is the architecture-specific target (`sm_90a`): a kernel compiled for the device it runs on
/// loses nothing by it, and gains the instructions only that architecture has (`wgmma`, `setmaxnreg`),
/// which a kernel may then use behind a tunable parameter.
pub fn arch_name((major, minor): (u32, u32)) -> String {
    if major >= 9 {
        format!("sm_{major}{minor}a")
    } else {
        format!("sm_{major}{minor}")
    }
}

/// Checks that libcuda can be loaded (cudarc panics on first use otherwise).
pub(crate) fn ensure_driver() -> Result<(), CudaError> {
    // SAFETY: only tries to dlopen the library by its usual names.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::NoLibrary("driver (libcuda)"))
    }
}

/// Checks that libnvrtc can be loaded.
pub(crate) fn ensure_nvrtc() -> Result<(), CudaError> {
    // SAFETY: only tries to dlopen the library by its usual names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::NoLibrary("NVRTC (libnvrtc)"))
    }
}

#[cfg(test)]
mod tests {
    use super::arch_name;

    #[test]
    fn hopper_and_later_compile_for_their_architecture_specific_target() {
        assert_eq!(arch_name((8, 0)), "sm_80");
        assert_eq!(arch_name((8, 9)), "sm_89");
        assert_eq!(arch_name((9, 0)), "sm_90a");
        assert_eq!(arch_name((10, 0)), "sm_100a");
    }
}
