//! Cross-crate tests: real `cargo` builds of fixture crates and the `cargo-autotune` binary.
//!
//! Fixture builds are the slow part (each is a `cargo build` of a crate outside the workspace), so they
//! share one target directory and there are few of them; put checks that need no build in the library
//! crates' own tests.

// Helpers: a fresh directory per test, fixture copies, a cargo command with a shared target dir.
mod util;

// The offline fixture builds from its committed cache and bakes the cached best config.
mod fixture_offline;
// A launcher tuned at several sizes: dispatch by size and device, offline misses per size.
mod fixture_sized;
// A kernel with no entry: the default config and a warning, or, offline, an error naming the fix.
mod cache_miss;
// Damaged, hand-edited and crafted entries fail the build, naming the file.
mod corrupt_cache;
// `cargo autotune check` on the kernels crate and on a fixture with a stale entry.
mod cli;
// The crate and module graphs have no circles, dependencies point down, the environment is read in one place.
mod layering;
