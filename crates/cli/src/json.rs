//! The `--json` output of `tune`, `check` and `list`: JSON Lines on stdout, a stable format.
//!
//! Every line is one object with a `"type"`:
//!
//! - `kernel`: `{"type":"kernel","kernel","declared_in","source","content_key","entries":[{"path","device",
//!   "compute_capability","best","best_time_ms","default_time_ms","speedup"}]}` (`list`, and `check` for each
//!   kernel that is fine);
//! - `miss`: `{"type":"miss","kernel","content_key","device","fix"}`: no fresh entry (for `device`, when
//!   a GPU was asked; `null` otherwise);
//! - `stale`: `{"type":"stale","kernel","path","reason","fix"}`: an intact entry for another version of
//!   the kernel, or an entry no launcher owns;
//! - `invalid`: `{"type":"invalid","path","reason","fix"}`: a corrupt entry or one that does not fit the
//!   declared space;
//! - `tuned`: `{"type":"tuned","kernel","path","device","best","best_time_ms","default_time_ms","speedup",
//!   "evaluations","wall_seconds"}` (`tune`);
//! - `summary`: `{"type":"summary","kernels","problems"}` (`check`), or `{"type":"summary","kernels",
//!   "tuned","skipped"}` (`tune`), always last.
//!
//! Fields are only ever added.

use serde_json::{json, Value};

use tuner_build::cache::Cached;

/// Prints one JSON line.
pub fn emit(v: Value) {
    println!("{v}");
}

/// An entry as `kernel` lines list it.
pub fn entry(c: &Cached) -> Value {
    let e = &c.entry;
    json!({
        "path": c.path.display().to_string(),
        "device": e.device.name,
        "compute_capability": [e.device.compute_capability.0, e.device.compute_capability.1],
        "best": e.best,
        "best_time_ms": e.best_time_ms,
        "default_time_ms": e.default_time_ms,
        "speedup": e.speedup(),
    })
}
