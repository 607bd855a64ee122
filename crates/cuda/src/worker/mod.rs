//! Evaluating configs in child processes: the wire protocol and a pool of workers.
//!
//! A kernel that never finishes cannot be interrupted from inside the process that launched it: the
//! launch is asynchronous, the next synchronisation blocks forever, and the driver offers no way to cancel
//! one kernel. A bad memory access is no better: it poisons the CUDA context, and every later call in that
//! process fails. So configs are measured in a child process (`cargo-autotune __worker`, the same binary),
//! and the parent only compiles, dispatches and waits with a deadline. A child that misses its deadline is
//! killed and the config is recorded as a timeout; a child that dies, or that reports a context-poisoning
//! error and exits, costs that one config; either way a fresh child is started and takes over.
//!
//! [`protocol`] is the wire format (JSON Lines over the child's stdin and stdout, each message tagged with
//! `"type"`), [`pool`] runs N children (one per GPU, issue 7) and hands each job to whichever is free.
//! Neither needs CUDA, so CI tests them with plain processes; the CUDA side of the child is
//! `crate::serve`.

pub mod pool;
pub mod protocol;

pub use pool::{Pool, PoolError, PoolOptions};
pub use protocol::{EvalResult, Failure, FailureKind, GpuInfo, Measurement, Request, Response};
