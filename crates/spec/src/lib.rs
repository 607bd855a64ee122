//! What a tuned kernel declares, checked: the `#[autotune(...)]` attribute's grammar, its expressions
//! (one evaluator), the config space and the launch layout.
//!
//! This crate is the bottom of the house. The proc-macro (`tuner-macro`) and the build script
//! (`tuner-build`) parse attributes with the same [`spec`] parser, so the two can never disagree on what
//! an attribute means; the search (`tuner-search`) works over a [`Space`]; the CUDA backend binds a
//! [`layout::Layout`]. It does no I/O beyond what its callers hand it, and it has no CUDA, network or
//! terminal dependency, which keeps the macro and the offline CI path light.
//!
//! An implementation detail of `tuner-runtime`, which re-exports what users need.

pub mod checked;
pub mod config;
pub mod device;
pub mod dispatch;
pub mod expr;
pub mod layout;
pub mod space;
pub mod spec;
pub mod value;

use std::path::{Path, PathBuf};

pub use checked::CheckedSpec;
pub use config::Config;
pub use space::{ConfigError, JsonConfigError, Point, Space, SpaceError};
pub use spec::{KernelSpec, SpecError};
pub use value::{Value, ValueType};

/// Where the generated file of launcher `name` goes under `OUT_DIR`: the build script writes it, the
/// macro includes it. One function, so the two always agree.
pub fn generated_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join("autotune").join(format!("{name}.rs"))
}

/// An error and its sources on one line, `outer: inner: root`, for messages that travel as text (worker
/// replies, JSON Lines, cache diagnostics, `compile_error!`s).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
