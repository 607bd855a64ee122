//! A build-time GPU kernel autotuner: a tuner over discrete config spaces and any objective, with
//! built-in search strategies, replay of recorded measurements, and (behind features) real CUDA
//! benchmarking, LLM-guided search, a content-hashed cache and code generation for `#[autotune]`.
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

pub mod build;
pub mod cache;
pub mod codegen;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod expr;
pub mod fsutil;
pub mod layout;
#[cfg(feature = "llm")]
pub mod llm;
pub mod objective;
pub mod replay;
pub mod scan;
pub mod space;
pub mod spec;
pub mod strategy;
pub mod table;
pub mod tuner;
pub mod tuning;
pub mod value;
pub mod verify;
pub mod worker;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cuda")]
pub mod gpu;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// An error and its sources on one line, `outer: inner: root`, for messages that travel as text (worker
/// replies, JSON Lines, cache diagnostics).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub use config::Config;
pub use objective::{Objective, Outcome};
pub use replay::{Replay, ReplayError};
pub use space::{ConfigError, JsonConfigError, Point, Space, SpaceError};
pub use strategy::{Strategy, StrategyKind};
pub use table::{Table, TableError};
pub use tuner::{Trial, TuneError, Tuner};
pub use value::{Value, ValueType};
