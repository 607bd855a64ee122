//! The `cargo-autotune` command line: argument parsing and dispatch, one file per subcommand.
//!
//! `cargo autotune <cmd>` runs this binary as `cargo-autotune autotune <cmd>`; a shipped binary is run as
//! `cargo-autotune <cmd>`. Both work: a leading `autotune` argument is dropped. Human diagnostics go to
//! stderr, results to stdout. Exit codes: 0 success, 1 a check found problems, 2 an error, 130 a run
//! cut short by Ctrl-C (after writing what it finished, marked as such).
//!
//! The environment is read once, into [`tuner_build::Settings`], before any command runs: a bad value
//! (`AUTOTUNE_MAX_EVALUATIONS=abc`) is an error naming the variable, whatever the command. Flags override
//! the settings; numbers in both go through the same bounds ([`tuner_search::limits`]).

mod args;
mod bench;
mod check;
mod crate_args;
mod interrupt;
pub mod json;
mod list;
mod progress;
mod record;
mod replay;
mod tune;
mod which;

pub use interrupt::INTERRUPTED;
use tuner_build::Settings;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// Build-time GPU kernel autotuner.
#[derive(Debug, Parser)]
#[command(name = "cargo-autotune", bin_name = "cargo autotune", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tune against a recorded table (Kernel Tuner cache format), with no GPU.
    Replay(replay::ReplayArgs),
    /// Tune every cache miss of a crate on this GPU and write the entries, without building the crate.
    Tune(tune::TuneArgs),
    /// Check that every kernel of a crate has a fresh, valid cache entry (exit 1 listing problems); no GPU.
    Check(check::CheckArgs),
    /// List each kernel, its sizes and devices, best config and speed-up over the default.
    List(list::ListArgs),
    /// Say which config a launch runs on a GPU at some sizes, and why (device fallback, nearest size); no GPU.
    Which(which::WhichArgs),
    /// Measure a strategy's search efficiency on a recorded table over many seeds and budgets (JSON Lines).
    Bench(bench::BenchArgs),
    /// Measure every config of a kernel's space (or a sample) on this GPU and write a table.
    Record(record::RecordArgs),
    /// Internal: serve as a benchmark worker over stdin/stdout (started by `record` and `tune`).
    #[command(name = "__worker", hide = true)]
    Worker,
}

/// Parses `args` (including the program name) and runs the command; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "autotune") {
        args.remove(1);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Command::Worker = cli.command {
        // A worker serves its parent over stdin and stdout; the parent read the settings.
        return worker();
    }
    let outcome = Settings::from_env().map_err(anyhow::Error::from).and_then(|settings| run(cli.command, &settings));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// Runs one command with the settings read from the environment; `Ok` carries the exit code.
pub fn run(command: Command, settings: &Settings) -> anyhow::Result<i32> {
    match command {
        Command::Replay(args) => replay::run(args, settings),
        Command::Tune(args) => tune::run(args, settings),
        Command::Check(args) => check::run(args, settings),
        Command::List(args) => list::run(args, settings),
        Command::Which(args) => which::run(args, settings),
        Command::Bench(args) => bench::run(args, settings),
        Command::Record(args) => record::run(args),
        Command::Worker => Ok(worker()),
    }
}

#[cfg(feature = "cuda")]
fn worker() -> i32 {
    tuner_cuda::serve::serve_stdio()
}

#[cfg(not(feature = "cuda"))]
fn worker() -> i32 {
    eprintln!("error: this cargo-autotune was built without the `cuda` feature and cannot serve as a worker");
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
