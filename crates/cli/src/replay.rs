//! `cargo autotune replay`: tune against a recorded table and report how close the search came.
//!
//! With `--json`, stdout is one JSON object:
//! `best_config` (object), `best_time` (ms), `optimum_time` (ms), `ratio` (`best_time / optimum_time`,
//! 1.0 is the optimum), `evaluations`, `found_at` (1-based evaluation of the best), `first_within_2pct`
//! (first evaluation within 2% of the optimum, or null), `invalid` (count), `strategy`, `seed`, `budget`,
//! `table`, `start` (the config measured first, or null), `interrupted` (true when Ctrl-C cut the run
//! short; the process then exits 130), and whatever the strategy reports (LLM calls, tokens, cost,
//! fallback…).
//!
//! Unset flags take `AUTOTUNE_STRATEGY`, `AUTOTUNE_MAX_EVALUATIONS`, `AUTOTUNE_SEED` and
//! `AUTOTUNE_POPULATION` when those are set, as a tune does, else the defaults below.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use tuner_build::Settings;
use tuner_search::replay::Replay;
use tuner_search::strategy::{StrategyKind, StrategyOptions};
use tuner_search::table::Table;
use tuner_search::tuner::Tuner;

use crate::interrupt::{self, INTERRUPTED};
use crate::progress::Bar;

/// The table `replay` tunes when no `--table` is given, so a fresh machine can run a real search with
/// no GPU and no files: real H100 measurements shipped inside the binary.
const EMBEDDED_TABLE: (&str, &str) = ("embedded:h100/sgemm.json", include_str!("../../../tables/h100/sgemm.json"));
/// The recorder's summary of the embedded table: its reference config is the SGEMM spec's default.
const EMBEDDED_META: (&str, &str) =
    ("embedded:h100/sgemm.meta.json", include_str!("../../../tables/h100/sgemm.meta.json"));

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recorded table (Kernel Tuner cache-file format); default: the embedded H100 table.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// The search strategy: random, de, local, surrogate, llm or hybrid (default: `$AUTOTUNE_STRATEGY`,
    /// else the one that measured best, as the build uses).
    #[arg(long, value_parser = crate::args::strategy)]
    pub strategy: Option<StrategyKind>,
    /// Evaluations allowed, at least 1 (default: `$AUTOTUNE_MAX_EVALUATIONS`, else 100).
    #[arg(long, value_parser = crate::args::budget)]
    pub budget: Option<usize>,
    /// Seed of the search's random generator (default: `$AUTOTUNE_SEED`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Batch size and population of population-based strategies, at least 1 (default:
    /// `$AUTOTUNE_POPULATION`, else 20).
    #[arg(long, value_parser = crate::args::population)]
    pub population: Option<usize>,
    /// Sampling temperature passed to strategies that sample: a finite number, at least 0.
    #[arg(long, default_value_t = 0.8, value_parser = crate::args::temperature)]
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
    pub fn configs(self, replay: &Replay) -> Vec<tuner_spec::Config> {
        match self {
            Start::Reference => replay.reference().cloned().into_iter().collect(),
            Start::None => Vec::new(),
        }
    }
}

/// The strategy a replay or bench run builds: the flag, else the settings, else the tool's default.
pub fn strategy_of(flag: Option<StrategyKind>, settings: &Settings) -> (StrategyKind, StrategyOptions) {
    let kind = flag.or(settings.search.strategy).unwrap_or_else(StrategyKind::tool_default);
    let options = StrategyOptions { batch: settings.search.batch, llm: settings.llm.clone() };
    (kind, options)
}

pub fn run(args: ReplayArgs, settings: &Settings) -> anyhow::Result<i32> {
    let budget = args.budget.or(settings.search.max_evaluations).unwrap_or(100);
    let seed = args.seed.or(settings.search.seed).unwrap_or(0);
    let population = args.population.or(settings.search.population).unwrap_or(20);
    let (strategy, strategy_options) = strategy_of(args.strategy, settings);
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
    let objective = |c: &tuner_spec::Config| {
        std::thread::sleep(delay);
        replay.outcome(c)
    };
    let start = args.start.configs(&replay);
    let verbose = args.verbose && !args.json;
    let mut tuner = Tuner::new(replay.space().clone(), SimulatedLatency(objective))
        .max_evaluations(budget)
        .population_size(population)
        .temperature(args.temperature)
        .seed(seed)
        .verbose(verbose)
        .stop_flag(interrupt::flag())
        .boxed_strategy(strategy.build_with(&strategy_options))
        .start_with(&start)?;
    if let Some(bar) = Bar::for_terminal(verbose || args.json) {
        tuner = tuner.progress(bar);
    }
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
        out.insert("seed".into(), seed.into());
        out.insert("budget".into(), budget.into());
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
        if tuner.interrupted() {
            println!("interrupted:  stopped by Ctrl-C after {} of {budget} evaluations", tuner.evaluation_count());
        }
    }
    Ok(if tuner.interrupted() { INTERRUPTED } else { 0 })
}

/// Wraps a replay lookup that sleeps first.
struct SimulatedLatency<F>(F);

impl<F: FnMut(&tuner_spec::Config) -> tuner_search::Outcome> tuner_search::Objective for SimulatedLatency<F> {
    fn evaluate(&mut self, config: &tuner_spec::Config) -> tuner_search::Outcome {
        (self.0)(config)
    }
}
