//! The `--json` output of `tune`, `check` and `list`: JSON Lines on stdout, a stable format.
//!
//! Every line is one object with a `"type"`:
//!
//! - `kernel`: `{"type":"kernel","kernel","declared_in","source","content_key","sizes":["m=1024 …"],
//!   "entries":[{"path","device","compute_capability","sizes":{"m":1024,…},"best","best_time_ms",
//!   "default_time_ms","speedup","starts"}]}` (`list`, and `check` for each kernel);
//! - `miss`: `{"type":"miss","kernel","content_key","sizes","device","fix"}`: a size point with no fresh
//!   entry on any GPU (`sizes` is `null` for a kernel with one point);
//! - `fallback`: `{"type":"fallback","kernel","sizes","device","runs","fix"}` (`check --device`): a point
//!   that GPU has no entry of its own for, and what a launch there runs;
//! - `which`: `{"type":"which","kernel","device","compute_capability","sizes","config","source","entry",
//!   "entry_device","entry_sizes","device_match","distance","passed_over","grid","block","shared"}`
//!   (`which`): the config a launch runs, and why;
//! - `stale`: `{"type":"stale","kernel","path","reason","fix"}`: an intact entry for another version of
//!   the kernel, or an entry no launcher owns;
//! - `invalid`: `{"type":"invalid","path","reason","fix"}`: a corrupt entry or one that does not fit the
//!   declared space;
//! - `tuned`: `{"type":"tuned","kernel","sizes","path","device","best","best_time_ms","default_time_ms",
//!   "speedup","evaluations","wall_seconds","starts"}` (`tune`, one per size point tuned);
//! - `failed`: `{"type":"failed","kernel","sizes","error"}` (`tune`): a size point whose tune failed; the
//!   others are still tuned, and `tune` exits 1;
//! - `summary`: `{"type":"summary","kernels","problems"}` (`check`), or `{"type":"summary","kernels",
//!   "tuned","skipped","failed","interrupted"}` (`tune`, counting size points), always last.
//!
//! A `kernel` line's `content_key` is the key at the bench sizes (the one point of a kernel without
//! `sizes(…)`); each entry's own key is in its file name.
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
        "sizes": e.point().iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "best": e.best,
        "best_time_ms": e.best_time_ms,
        "default_time_ms": e.default_time_ms,
        "speedup": e.speedup(),
        "starts": e.starts,
    })
}
