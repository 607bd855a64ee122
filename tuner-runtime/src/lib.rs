//! A build-time GPU kernel autotuner: put `#[autotune(...)]` on a launcher, call
//! [`build::tune_crate`] from `build.rs`, and `cargo build` tunes the kernel on the GPU (or bakes the
//! committed cache entry), then compiles the chosen config in as typed constants.
//!
//! This crate is the one a user depends on: it re-exports the attribute ([`autotune`]), the generic tuner
//! and its strategies, and — behind features — the CUDA backend (`cuda`), the build-script entry
//! (`build`, a `[build-dependencies]` feature) and the LLM client (`llm`). Each concern lives in a crate
//! of its own (`tuner-spec`, `tuner-search`, `tuner-llm`, `tuner-cuda`, `tuner-build`; the CLI is
//! `tuner-cli`), which are implementation details; docs/design.md draws the layers.
//!
//! ```toml
//! [dependencies]
//! tuner-runtime = { version = "0.1", features = ["cuda"] }
//! cudarc = { version = "0.19", default-features = false, features = ["std", "cuda-13000", "dynamic-loading", "driver", "nvrtc"] }
//!
//! [build-dependencies]
//! tuner-runtime = { version = "0.1", features = ["build", "cuda"] }
//! ```
//!
//! # Example
//!
//! Tune a recorded H100 table with no GPU: the replay objective scores each config by `1 / time`.
//!
//! ```
//! use tuner_runtime::{Replay, StrategyKind, Tuner};
//!
//! let replay = Replay::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/transpose.json"))?;
//! let mut tuner = Tuner::new(replay.space().clone(), &replay)
//!     .max_evaluations(30)
//!     .verbose(false)
//!     .seed(7)
//!     .boxed_strategy(StrategyKind::Local.build());
//! let best = tuner.tune()?;
//! let time = replay.time(&best)?.expect("the best config ran");
//! assert!(time >= replay.optimum().0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Details
//!
//! The data flows one way: a [`Space`] is validated once; a [`Strategy`] proposes points; the [`Tuner`]
//! validates and deduplicates them, evaluates them with an [`Objective`] and records a [`Trial`] each.
//! The tuner prints nothing itself: `verbose(true)` is the seed's lines on stdout ([`Verbose`]), and any
//! [`Progress`] can be passed. Ctrl-C is the caller's: pass a flag to [`Tuner::stop_flag`] (with the
//! `ctrlc` feature, [`stop_on_ctrl_c`] makes one that the first Ctrl-C sets).

pub use tuner_macro::autotune;

pub use tuner_search::{
    fsutil, objective, replay, report, strategy, table, trial, tuner, Gpu, KernelObjective, Objective, Outcome,
    Progress, Replay, ReplayError, Strategy, StrategyKind, Table, TableError, Trial, TuneError, Tuner, Verbose,
};
pub use tuner_spec::{
    config, device, expr, layout, space, spec, value, CheckedSpec, Config, ConfigError, JsonConfigError, KernelSpec,
    Point, Space, SpaceError, SpecError, Value, ValueType,
};

/// The CUDA backend: NVRTC, benchmarking in worker processes, device identity (feature `cuda`).
#[cfg(feature = "cuda")]
pub use tuner_cuda as cuda;

/// The OpenAI-compatible client the LLM strategies use (feature `llm`).
#[cfg(feature = "llm")]
pub use tuner_llm as llm;

/// The build-script entry (feature `build`): `fn main() { tuner_runtime::build::tune_crate().expect("autotune"); }`.
#[cfg(feature = "build")]
pub mod build {
    pub use tuner_build::*;

    /// The build-script entry point: scans the crate's `#[autotune]` launchers, bakes their cache
    /// entries and, on a GPU machine (feature `cuda`), tunes the misses. See `tuner_build` for the table
    /// of what happens where.
    pub fn tune_crate() -> Result<(), Error> {
        #[cfg(feature = "cuda")]
        {
            // A build script that measures is its own worker: the benchmark starts it again with the
            // worker argument (never an inherited variable), and then it serves instead of building.
            if let Some(code) = tuner_cuda::serve::serve_if_worker_arg() {
                if code != 0 {
                    return Err(Error::Worker(code));
                }
                return Ok(());
            }
            tuner_build::tune_crate_with(&|settings: &Settings| {
                tuner_cuda::gpu::CudaGpu::detect(settings.devices.as_deref())
                    .map(|g| Box::new(g) as Box<dyn tuner_search::Gpu>)
                    .map_err(|e| tuner_spec::error_chain(&e))
            })
        }
        #[cfg(not(feature = "cuda"))]
        tuner_build::tune_crate_with(&|_: &Settings| {
            Err("this build-dependency has no `cuda` feature, so it cannot tune on a GPU".to_owned())
        })
    }
}

/// A stop flag that the first Ctrl-C sets, for [`Tuner::stop_flag`] (feature `ctrlc`). A second Ctrl-C
/// while the first is honoured ends the process with status 130, as shells expect. Installing it twice, or
/// where the program has its own handler, is an error.
#[cfg(feature = "ctrlc")]
pub fn stop_on_ctrl_c() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, ctrlc::Error> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    ctrlc::set_handler(move || {
        if set.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })?;
    Ok(flag)
}

mod launch;
pub use launch::LaunchError;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
