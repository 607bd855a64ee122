//! The search: a [`Tuner`] runs a [`Strategy`] against an [`Objective`] within a budget and keeps the
//! history of [`Trial`]s; recorded measurements replay as objectives ([`Replay`], [`Table`]).
//!
//! The core reports and the edges print: the tuner tells a [`Progress`] what happens (the seed's
//! `verbose` lines are one [`Progress`], [`report::Verbose`]; the CLI adds a progress bar, the build
//! script its own lines), and it stops when the caller's stop flag is set ([`Tuner::stop_flag`]);
//! whether Ctrl-C sets it is the caller's choice. Nothing here prints, reads the environment or
//! installs a signal handler.
//!
//! An implementation detail of `tuner-runtime`, which re-exports what users need.
//!
//! # Example
//!
//! Tune a recorded H100 table with no GPU: the replay objective scores each config by `1 / time`.
//!
//! ```
//! use tuner_search::{Replay, StrategyKind, Tuner};
//!
//! let replay = Replay::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/transpose.json"))?;
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

pub mod fsutil;
pub mod limits;
pub mod measure;
pub mod objective;
pub mod replay;
pub mod report;
pub mod strategy;
pub mod table;
pub mod trial;
pub mod tuner;

pub use measure::{Gpu, KernelObjective};
pub use objective::{Objective, Outcome};
pub use replay::{Replay, ReplayError};
pub use report::{Progress, Verbose};
pub use strategy::{Strategy, StrategyKind};
pub use table::{Table, TableError};
pub use trial::Trial;
pub use tuner::{TuneError, Tuner};
pub use tuner_spec::{Config, ConfigError, JsonConfigError, Point, Space, SpaceError, Value, ValueType};
