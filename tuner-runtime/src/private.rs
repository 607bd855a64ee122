//! Support for the code `#[autotune]` generates. Not public API: names and signatures here change
//! whenever the macro and the code generator change together.
//!
//! Generated code names everything through `::tuner_runtime::__private::…`, so a user crate needs no
//! imports and a rename elsewhere in this crate cannot break it.

#[cfg(feature = "cuda")]
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(feature = "cuda")]
use cudarc::driver::{CudaFunction, CudaModule, CudaStream};

use tuner_spec::config::Config;
pub use tuner_spec::value::Value;

/// A launcher's kernel: its embedded source, compiled with the tuned `-D` values at the first launch on
/// each device and kept loaded after that (candle's `get_or_load_func`).
pub struct Kernel {
    name: &'static str,
    file: &'static str,
    source: &'static str,
    entry: &'static str,
    params: fn() -> Vec<(&'static str, Value)>,
    /// Loaded modules by device ordinal: one per device the process launches on.
    #[cfg(feature = "cuda")]
    loaded: Mutex<Vec<(usize, Arc<CudaModule>)>>,
}

impl Kernel {
    /// `params` gives the tuned values for the running GPU (the generated `tuned().params()`).
    pub const fn new(
        name: &'static str,
        file: &'static str,
        source: &'static str,
        entry: &'static str,
        params: fn() -> Vec<(&'static str, Value)>,
    ) -> Kernel {
        Kernel {
            name,
            file,
            source,
            entry,
            params,
            #[cfg(feature = "cuda")]
            loaded: Mutex::new(Vec::new()),
        }
    }

    /// The launcher's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The kernel source's file name (NVRTC names it in its log).
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The embedded kernel source.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The `extern "C"` entry point.
    pub fn entry(&self) -> &'static str {
        self.entry
    }

    /// The tuned config this process uses.
    pub fn config(&self) -> Config {
        let (names, values): (Vec<String>, Vec<Value>) =
            (self.params)().into_iter().map(|(n, v)| (n.to_owned(), v)).unzip();
        Config::new(names.into(), values)
    }

    /// The `-D` options the kernel is compiled with, as the benchmark compiled it when tuning.
    pub fn defines(&self) -> Vec<String> {
        tuner_spec::layout::defines(&self.config())
    }

    /// The kernel function on `stream`'s device: compiled with NVRTC for the device's architecture and
    /// loaded at the first call on that device, reused after that.
    #[cfg(feature = "cuda")]
    pub fn function(&self, stream: &Arc<CudaStream>) -> Result<CudaFunction, tuner_cuda::CudaError> {
        let ctx = stream.context();
        // A panic while holding the lock leaves the list as it was: still valid.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let module = match loaded.iter().find(|(ordinal, _)| *ordinal == ctx.ordinal()) {
            Some((_, m)) => m.clone(),
            None => {
                let module = tuner_cuda::compile::load_module(ctx, self.name, self.file, self.source, &self.defines())?;
                loaded.push((ctx.ordinal(), module.clone()));
                module
            }
        };
        tuner_cuda::compile::load_function(&module, self.entry)
    }
}

/// The best config of one device, as the generated `ENTRIES` table lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceEntry<T: 'static> {
    /// The GPU name the driver reports.
    pub device: &'static str,
    pub compute_capability: (u32, u32),
    pub config: T,
}

/// The config of the entry matching the GPU `name` with `compute_capability`: both must be equal, since
/// a config tuned for one GPU says little about another.
pub fn select<T: Copy>(entries: &[DeviceEntry<T>], name: &str, compute_capability: (u32, u32)) -> Option<T> {
    entries.iter().find(|e| e.device == name && e.compute_capability == compute_capability).map(|e| e.config)
}

/// The name and compute capability of the GPU this process runs on (device 0 of the visible devices),
/// or `None` when there is none or the crate was built without the `cuda` feature.
pub fn running_device() -> Option<(String, (u32, u32))> {
    #[cfg(feature = "cuda")]
    {
        tuner_cuda::query_device(0).ok().map(|d| (d.name, d.compute_capability))
    }
    #[cfg(not(feature = "cuda"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_needs_name_and_compute_capability() {
        let entries = [
            DeviceEntry { device: "NVIDIA H100 80GB HBM3", compute_capability: (9, 0), config: 1 },
            DeviceEntry { device: "NVIDIA A100-SXM4-80GB", compute_capability: (8, 0), config: 2 },
        ];
        assert_eq!(select(&entries, "NVIDIA H100 80GB HBM3", (9, 0)), Some(1));
        assert_eq!(select(&entries, "NVIDIA A100-SXM4-80GB", (8, 0)), Some(2));
        assert_eq!(select(&entries, "NVIDIA H100 80GB HBM3", (8, 0)), None);
        assert_eq!(select(&entries, "NVIDIA L4", (8, 9)), None);
    }

    #[test]
    fn kernels_compile_with_the_benchmarks_defines() {
        fn params() -> Vec<(&'static str, Value)> {
            vec![("block", Value::Int(256)), ("vec", Value::Bool(true))]
        }
        static K: Kernel = Kernel::new("scale", "scale.cu", "// source", "scale", params);
        assert_eq!(K.defines(), vec!["-DBLOCK=256".to_owned(), "-DVEC=1".to_owned()]);
        assert_eq!((K.name(), K.entry(), K.source()), ("scale", "scale", "// source"));
    }
}
