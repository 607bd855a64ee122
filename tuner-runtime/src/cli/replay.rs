//! `cargo autotune replay`: tune against a recorded table and report how close the search came.
//!
//! With `--json`, stdout is one JSON object:
//! `best_config` (object), `best_time` (ms), `optimum_time` (ms), `ratio` (`best_time / optimum_time`,
//! 1.0 is the optimum), `evaluations`, `found_at` (1-based evaluation of the best), `first_within_2pct`
//! (first evaluation within 2% of the optimum, or null), `invalid` (count), `strategy`, `seed`, `budget`,
//! `table`, `start` (the config measured first, or null), and whatever the strategy reports (LLM calls, tokens, cost, fallback…).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::replay::Replay;
use crate::strategy::StrategyKind;
use crate::table::Table;

/// The table `replay` tunes when no `--table` is given, so a fresh machine can run a real search with
/// no GPU and no files: real H100 measurements shipped inside the binary.
const EMBEDDED_TABLE: (&str, &str) = ("embedded:h100/sgemm.json", include_str!("../../../tables/h100/sgemm.json"));
/// The recorder's summary of the embedded table: its reference config is the SGEMM spec's default.
const EMBEDDED_META: (&str, &str) =
    ("embedded:h100/sgemm.meta.json", include_str!("../../../tables/h100/sgemm.meta.json"));
use crate::tuner::Tuner;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recorded table (Kernel Tuner cache-file format); default: the embedded H100 table.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// The search strategy (default: the one that measured best, as `tune()` and the build use).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyKind>,
    /// Evaluations allowed.
    #[arg(long, default_value_t = 100)]
    pub budget: usize,
    /// Seed of the search's random generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Batch size and population of population-based strategies.
    #[arg(long, default_value_t = 20)]
    pub population: usize,
    /// Sampling temperature passed to strategies that sample.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// An extra constraint over the table's parameters (repeatable).
    #[arg(long = "constraint")]
    pub constraints: Vec<String>,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Sleep this many milliseconds per evaluation, to mimic a real benchmark's latency (demos, the
    /// progress bar, Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub simulate_ms: u64,
    /// Print every evaluation (`Evaluation i/N: config=…, score=…`).
    #[arg(short, long)]
    pub verbose: bool,
    /// Where the search starts: `reference` measures the table's reference config first (the kernel's
    /// default, from the `.meta.json` beside the table), as a tune on the GPU measures the default
    /// first; `none` starts cold. A table without a reference starts cold either way.
    #[arg(long, value_enum, default_value_t = Start::Reference)]
    pub start: Start,
}

/// Where a replayed search starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Start {
    /// The table's reference config first, as a tune on the GPU starts from the kernel's default.
    Reference,
    /// No start: the strategy's own first proposals (how the comparison with Kernel Tuner runs).
    None,
}

impl Start {
    /// The configs to measure first on `replay`.
    pub fn configs(self, replay: &Replay) -> Vec<crate::Config> {
        match self {
            Start::Reference => replay.reference().cloned().into_iter().collect(),
            Start::None => Vec::new(),
        }
    }
}

pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let replay = match &args.table {
        Some(path) => Replay::load(path)?,
        None => Replay::from_table(Table::parse(EMBEDDED_TABLE.1, Path::new(EMBEDDED_TABLE.0))?, EMBEDDED_TABLE.0)?
            .with_meta(EMBEDDED_META.1, EMBEDDED_META.0)?,
    };
    let table_name = replay.path().display().to_string();
    let replay =
        replay.constrain(&args.constraints).with_context(|| format!("applying --constraint to {table_name}"))?;
    let (optimum_time, _) = replay.optimum();
    let delay = std::time::Duration::from_millis(args.simulate_ms);
    let objective = |c: &crate::Config| {
        std::thread::sleep(delay);
        replay.outcome(c)
    };
    let start = args.start.configs(&replay);
    let mut tuner = Tuner::new(replay.space().clone(), SimulatedLatency(objective))
        .max_evaluations(args.budget)
        .population_size(args.population)
        .temperature(args.temperature)
        .seed(args.seed)
        .verbose(args.verbose && !args.json)
        .boxed_strategy(args.strategy.unwrap_or_default().build())
        .start_with(&start)?;
    let best = tuner.tune()?;
    let best_time = replay.time(&best)?.context("the best config has no recorded time")?;
    let found_at = tuner.best_found_at().expect("tune() returned a best config");
    let first_within_2pct =
        tuner.history().iter().position(|t| t.score.is_some_and(|s| 1.0 / s <= optimum_time * 1.02)).map(|i| i + 1);
    let invalid = tuner.history().iter().filter(|t| t.score.is_none()).count();
    if args.json {
        let mut out = serde_json::Map::new();
        out.insert("best_config".into(), best.to_json());
        out.insert("best_time".into(), best_time.into());
        out.insert("optimum_time".into(), optimum_time.into());
        out.insert("ratio".into(), (best_time / optimum_time).into());
        out.insert("evaluations".into(), tuner.evaluation_count().into());
        out.insert("found_at".into(), found_at.into());
        out.insert("first_within_2pct".into(), first_within_2pct.into());
        out.insert("invalid".into(), invalid.into());
        out.insert("seed".into(), args.seed.into());
        out.insert("budget".into(), args.budget.into());
        out.insert("table".into(), table_name.into());
        out.insert("start".into(), start.first().map(|c| c.to_json()).into());
        out.insert("interrupted".into(), tuner.interrupted().into());
        out.extend(tuner.strategy_report());
        println!("{}", serde_json::Value::Object(out));
    } else {
        println!("best config:  {best}");
        println!(
            "best time:    {best_time:.4} ms (optimum {optimum_time:.4} ms, ratio {:.4})",
            best_time / optimum_time
        );
        println!("found at:     evaluation {found_at} of {} ({invalid} invalid)", tuner.evaluation_count());
    }
    Ok(0)
}

/// Wraps a replay lookup that sleeps first.
struct SimulatedLatency<F>(F);

impl<F: FnMut(&crate::Config) -> crate::Outcome> crate::Objective for SimulatedLatency<F> {
    fn evaluate(&mut self, config: &crate::Config) -> crate::Outcome {
        (self.0)(config)
    }
}
