//! `cargo autotune bench`: measure a strategy's search efficiency on a recorded table over many seeds.
//!
//! `replay` runs one search and reports how close it came; judging a strategy takes the same search
//! repeated over seeds and budgets, and the whole trajectory of each run (to draw convergence curves and
//! count evaluations to a quality band). Spawning one `replay` process per run would do, but this does
//! the runs in one process and prints every trajectory, which is what `scripts/bench_search.py` reads.
//!
//! Every (budget, seed) pair is a separate run from scratch: a strategy may plan with the budget it is
//! given (the tuner tells it the evaluations remaining), so the result at budget 50 is not read off a
//! run at budget 200.
//!
//! Output (stdout) is JSON Lines, one object per run, `"type": "run"`: `table`, `strategy`, `budget`,
//! `seed`, `start` (the config measured first, or null), `optimum_time` (ms, the table's fastest config), `best_time` (ms, or null when nothing valid
//! was found), `ratio` (`best_time / optimum_time`, null likewise), `evaluations`, `first_within_2pct`
//! (1-based, or null), `invalid` (count), `wall_ms` (the search's own wall time: strategy plus table
//! lookups), `times` (the recorded time in ms of each evaluation in order, null for a failed config),
//! `interrupted` (true for the run Ctrl-C cut short: it is written, marked, and the bench stops there
//! with exit status 130), plus whatever the strategy reports. The seeds are `first_seed .. first_seed +
//! seeds`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;

use super::replay::{strategy_of, Start};
use crate::interrupt::{self, INTERRUPTED};
use tuner_build::Settings;
use tuner_search::limits;
use tuner_search::replay::Replay;
use tuner_search::strategy::StrategyKind;
use tuner_search::tuner::Tuner;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The recorded table (Kernel Tuner cache-file format).
    #[arg(long)]
    pub table: PathBuf,
    /// The search strategy: random, de, local, surrogate, llm or hybrid.
    #[arg(long, value_parser = crate::args::strategy)]
    pub strategy: StrategyKind,
    /// Budgets (evaluations allowed, each at least 1), comma-separated; each is a separate run per seed.
    #[arg(long, value_delimiter = ',', default_value = "20,50,100,200", value_parser = crate::args::budget)]
    pub budgets: Vec<usize>,
    /// How many seeds to run per budget, at least 1.
    #[arg(long, default_value_t = 30, value_parser = crate::args::seeds)]
    pub seeds: usize,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Batch size and population of population-based strategies, at least 1.
    #[arg(long, default_value_t = 20, value_parser = crate::args::population)]
    pub population: usize,
    /// Sampling temperature passed to strategies that sample: a finite number, at least 0.
    #[arg(long, default_value_t = 0.8, value_parser = crate::args::temperature)]
    pub temperature: f64,
    /// Where each search starts: the table's reference config (the kernel's default) or `none`.
    #[arg(long, value_enum, default_value_t = Start::Reference)]
    pub start: Start,
}

pub fn run(args: BenchArgs, settings: &Settings) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let finished = write_runs(&args, settings, &interrupt::flag(), &mut out)?;
    out.flush()?;
    Ok(if finished { 0 } else { INTERRUPTED })
}

/// Runs every (budget, seed) of `args` and writes one JSON line per run to `out`; returns false when
/// `stop` cut the bench short (the run it cut is written, with `"interrupted": true`).
fn write_runs(
    args: &BenchArgs,
    settings: &Settings,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<bool> {
    let seeds = limits::seed_range(args.first_seed, args.seeds).context("--first-seed and --seeds")?;
    let replay = Replay::load(&args.table)?;
    let table_name = replay.path().display().to_string();
    let (optimum_time, _) = replay.optimum();
    anyhow::ensure!(optimum_time.is_finite(), "table {table_name} records no valid config");
    let (strategy, strategy_options) = strategy_of(Some(args.strategy), settings);
    let strategy_name = strategy.name();
    let start = args.start.configs(&replay);
    let start_json: serde_json::Value = start.first().map(|c| c.to_json()).into();
    for &budget in &args.budgets {
        for seed in seeds.clone() {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(false);
            }
            let started = Instant::now();
            let mut tuner = Tuner::new(replay.space().clone(), &replay)
                .max_evaluations(budget)
                .population_size(args.population)
                .temperature(args.temperature)
                .seed(seed)
                .verbose(false)
                .stop_flag(stop.clone())
                .boxed_strategy(strategy.build_with(&strategy_options))
                .start_with(&start)?;
            // NoValidConfig is a result here (ratio null), not an error.
            let best = tuner.tune().ok();
            let wall_ms = started.elapsed().as_secs_f64() * 1e3;
            let times: Vec<Option<f64>> = tuner
                .history()
                .iter()
                .map(|t| match t.score {
                    Some(_) => replay.time(&t.config).ok().flatten(),
                    None => None,
                })
                .collect();
            let best_time = match &best {
                Some(c) => replay.time(c).with_context(|| format!("the best config of seed {seed}"))?,
                None => None,
            };
            let first_within_2pct =
                times.iter().position(|t| t.is_some_and(|t| t <= optimum_time * 1.02)).map(|i| i + 1);
            let mut obj = serde_json::Map::new();
            obj.insert("type".into(), "run".into());
            obj.insert("table".into(), table_name.clone().into());
            obj.insert("strategy".into(), strategy_name.into());
            obj.insert("budget".into(), budget.into());
            obj.insert("seed".into(), seed.into());
            obj.insert("start".into(), start_json.clone());
            obj.insert("optimum_time".into(), optimum_time.into());
            obj.insert("best_time".into(), best_time.into());
            obj.insert("ratio".into(), best_time.map(|t| t / optimum_time).into());
            obj.insert("evaluations".into(), tuner.evaluation_count().into());
            obj.insert("first_within_2pct".into(), first_within_2pct.into());
            obj.insert("invalid".into(), times.iter().filter(|t| t.is_none()).count().into());
            obj.insert("wall_ms".into(), wall_ms.into());
            obj.insert("times".into(), times.into());
            obj.insert("interrupted".into(), tuner.interrupted().into());
            for (k, v) in tuner.strategy_report() {
                obj.entry(k).or_insert(v);
            }
            writeln!(out, "{}", serde_json::Value::Object(obj))?;
            if tuner.interrupted() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(strategy: StrategyKind) -> Vec<serde_json::Value> {
        let args = BenchArgs {
            table: concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/transpose.json").into(),
            strategy,
            budgets: vec![5, 30],
            seeds: 3,
            first_seed: 7,
            population: 10,
            temperature: 0.8,
            start: Start::Reference,
        };
        let mut out = Vec::new();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        assert!(write_runs(&args, &Settings::default(), &stop, &mut out).expect("bench runs"), "not interrupted");
        String::from_utf8(out).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }

    #[test]
    fn one_line_per_budget_and_seed_with_a_consistent_trajectory() {
        let runs = bench(StrategyKind::Random);
        assert_eq!(runs.len(), 6);
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r["type"], "run");
            assert_eq!(r["strategy"], "random");
            assert_eq!(r["budget"], if i < 3 { 5 } else { 30 });
            assert_eq!(r["seed"], 7 + (i as u64 % 3));
            let times = r["times"].as_array().expect("times");
            assert_eq!(times.len() as u64, r["evaluations"].as_u64().expect("evaluations"));
            assert_eq!(times.iter().filter(|t| t.is_null()).count() as u64, r["invalid"].as_u64().expect("invalid"));
            let best = times.iter().filter_map(|t| t.as_f64()).fold(f64::INFINITY, f64::min);
            assert_eq!(r["best_time"].as_f64().expect("a valid config"), best);
            let optimum = r["optimum_time"].as_f64().expect("optimum");
            assert_eq!(r["ratio"].as_f64().expect("ratio"), best / optimum);
            let first =
                times.iter().position(|t| t.as_f64().is_some_and(|t| t <= optimum * 1.02)).map(|i| i as u64 + 1);
            assert_eq!(r["first_within_2pct"].as_u64(), first);
        }
    }

    #[test]
    fn reproducible_by_seed() {
        let strip = |mut v: Vec<serde_json::Value>| {
            v.iter_mut().for_each(|r| {
                r.as_object_mut().expect("object").remove("wall_ms");
            });
            v
        };
        assert_eq!(strip(bench(StrategyKind::De)), strip(bench(StrategyKind::De)));
    }
}
