//! Support for the code `#[autotune]` generates. Not public API: names and signatures here change
//! whenever the macro and the code generator change together.
//!
//! Generated code names everything through `::tuner_runtime::__private::…`, so a user crate needs no
//! imports and a rename elsewhere in this crate cannot break it.

#[cfg(feature = "cuda")]
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(feature = "cuda")]
use cudarc::driver::{CudaFunction, CudaStream, LaunchConfig};

use tuner_spec::config::Config;
pub use tuner_spec::value::Value;

pub use crate::launch::{running_device, DeviceEntry, DeviceSlot, LaunchError, Pick, Table};

/// A launcher's kernel: its embedded source, compiled with a config's `-D` values at the first launch of
/// that config on each device and kept loaded after that (candle's `get_or_load_func`).
pub struct Kernel<T: 'static> {
    name: &'static str,
    file: &'static str,
    source: &'static str,
    entry: &'static str,
    table: &'static Table<T>,
    /// Loaded functions by (device ordinal, config index).
    #[cfg(feature = "cuda")]
    loaded: Mutex<Vec<(usize, usize, CudaFunction)>>,
}

/// What one launch runs: the config chosen for its device and sizes, its launch configuration (from
/// the attribute's `grid`, `block` and `shared` expressions) and the compiled function.
#[cfg(feature = "cuda")]
pub struct Plan<T: 'static> {
    pub config: &'static T,
    pub pick: Pick<T>,
    pub launch: LaunchConfig,
    pub function: CudaFunction,
}

impl<T: 'static> Kernel<T> {
    /// `table` is the generated dispatch table (`TABLE`).
    pub const fn new(
        name: &'static str,
        file: &'static str,
        source: &'static str,
        entry: &'static str,
        table: &'static Table<T>,
    ) -> Kernel<T> {
        Kernel {
            name,
            file,
            source,
            entry,
            table,
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

    /// The dispatch table.
    pub fn table(&self) -> &'static Table<T> {
        self.table
    }

    /// The config this process uses at the bench sizes (device 0).
    pub fn config(&self) -> Config {
        self.table.config(self.table.at_bench_running_index())
    }

    /// The `-D` options the bench-size config is compiled with, as the benchmark compiled it when tuning.
    pub fn defines(&self) -> Vec<String> {
        tuner_spec::layout::defines(&self.config())
    }

    /// The config, launch configuration and function for a launch of `sizes` (the values of the
    /// kernel's size variables, in declaration order: the generated `SIZES`) on `stream`'s device. The
    /// choice is made once per device and sizes; a config is compiled with NVRTC at its first launch on a
    /// device. A shape no config fits, not even the default, is [`LaunchError::NoFit`].
    #[cfg(feature = "cuda")]
    pub fn plan(&self, stream: &Arc<CudaStream>, sizes: &[i64]) -> Result<Plan<T>, LaunchError> {
        let ordinal = stream.context().ordinal();
        let pick = self.table.choose(self.table.device_of_ordinal(ordinal)?, sizes)?;
        let function = self.function_of(stream, pick.index)?;
        Ok(Plan { config: pick.config, pick, launch: tuner_cuda::launch_config(pick.geometry), function })
    }

    /// The kernel function on `stream`'s device for the bench-size config ([`Kernel::config`]).
    #[cfg(feature = "cuda")]
    #[allow(clippy::result_large_err)] // kept as it was for existing launchers; `plan` boxes the error
    pub fn function(&self, stream: &Arc<CudaStream>) -> Result<CudaFunction, tuner_cuda::CudaError> {
        self.function_of(stream, self.table.at_bench_running_index())
    }

    /// Config `index` compiled for `stream`'s device and loaded, at its first use there.
    #[cfg(feature = "cuda")]
    #[allow(clippy::result_large_err)] // the first launch of a config only
    fn function_of(&self, stream: &Arc<CudaStream>, index: usize) -> Result<CudaFunction, tuner_cuda::CudaError> {
        let ctx = stream.context();
        let find = |loaded: &[(usize, usize, CudaFunction)]| {
            loaded.iter().find(|(o, i, _)| *o == ctx.ordinal() && *i == index).map(|(_, _, f)| f.clone())
        };
        // A panic while holding the lock leaves the list as it was: still valid.
        if let Some(f) = find(&self.loaded.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(f);
        }
        // Compiled without the lock: a launch at a new size compiling its config does not hold up the
        // launches of configs already loaded. Two threads may compile the same config; the first kept wins.
        let defines = tuner_spec::layout::defines(&self.table.config(index));
        let module = tuner_cuda::compile::load_module(ctx, self.name, self.file, self.source, &defines)?;
        let function = tuner_cuda::compile::load_function(ctx, &module, self.entry)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = find(&loaded) {
            return Ok(f);
        }
        loaded.push((ctx.ordinal(), index, function.clone()));
        Ok(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Tuned {
        block: i64,
        vec: bool,
    }

    fn values(t: &Tuned) -> Vec<Value> {
        vec![Value::Int(t.block), Value::Bool(t.vec)]
    }

    const SPEC: &str = r#"{"name":"scale","kernel":"scale.cu","entry":"scale","params":[["block",[128,256]],["vec",[false,true]]],
        "constraints":[],"default":null,
        "bench":{"sizes":[["n",1024]],"args":[{"buffer":{"access":"out","elem":"f32","len":"n"}}],
                 "grid":["n / block"],"block":["block"],"shared":null,"bytes":null,"flops":null}}"#;
    static CONFIGS: [Tuned; 1] = [Tuned { block: 256, vec: true }];
    static TABLE: Table<Tuned> = Table::new(SPEC, &["block", "vec"], &["n"], &CONFIGS, &[], values);

    #[test]
    fn kernels_compile_with_the_benchmarks_defines() {
        static K: Kernel<Tuned> = Kernel::new("scale", "scale.cu", "// source", "scale", &TABLE);
        // No GPU in this process: the bench-size config is the default.
        assert_eq!(K.defines(), vec!["-DBLOCK=256".to_owned(), "-DVEC=1".to_owned()]);
        assert_eq!((K.name(), K.entry(), K.source()), ("scale", "scale", "// source"));
    }
}
