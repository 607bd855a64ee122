//! Benchmark (not a test): how many evaluations each strategy needs to reach the 2% band (a config within
//! 2% of the table's optimum time), median over seeds, on recorded replay tables; and for `LlmEvolution`,
//! what the model cost: calls, tokens, seconds per call and per proposal, and what became of its proposals.
//!
//! ```text
//! OPENAI_BASE_URL=http://127.0.0.1:8089/v1 AUTOTUNE_LLM_MODEL=qwen2.5-coder-0.5b \
//!   cargo run --example llm_bench -- --budget 48 --population 8 --seeds 20 --llm-seeds 5 \
//!   --out docs/llm-bench.jsonl tests/data/*.json
//! ```
//!
//! Rows: every built-in strategy; `islands` (LlmEvolution with the model switched off: the same islands,
//! migration and classical operators, so the difference to `llm` is the model's own contribution); and
//! `llm`. A run that never reaches the band counts as `budget + 1` in the median (so a median past the
//! budget reads "not reached").

#[cfg(feature = "llm")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench::main()
}

#[cfg(not(feature = "llm"))]
fn main() {
    eprintln!("llm_bench needs the `llm` feature");
}

#[cfg(feature = "llm")]
mod bench {
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::Instant;

    use serde_json::{json, Value as Json};
    use tuner_llm::LlmConfig;
    use tuner_search::strategy::{LlmEvolution, Overlap, Strategy};
    use tuner_search::{Replay, StrategyKind, Tuner};

    struct Args {
        budget: usize,
        population: usize,
        seeds: u64,
        llm_seeds: u64,
        llm_batch: usize,
        out: Option<PathBuf>,
        trace: Option<PathBuf>,
        tables: Vec<PathBuf>,
    }

    fn args() -> Result<Args, String> {
        let mut a = Args {
            budget: 48,
            population: 8,
            seeds: 20,
            llm_seeds: 5,
            llm_batch: 8,
            out: None,
            trace: None,
            tables: Vec::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--budget" => a.budget = val()?.parse().map_err(|e| format!("--budget: {e}"))?,
                "--population" => a.population = val()?.parse().map_err(|e| format!("--population: {e}"))?,
                "--seeds" => a.seeds = val()?.parse().map_err(|e| format!("--seeds: {e}"))?,
                "--llm-seeds" => a.llm_seeds = val()?.parse().map_err(|e| format!("--llm-seeds: {e}"))?,
                "--llm-batch" => a.llm_batch = val()?.parse().map_err(|e| format!("--llm-batch: {e}"))?,
                "--out" => a.out = Some(val()?.into()),
                "--trace" => a.trace = Some(val()?.into()),
                t if !t.starts_with("--") => a.tables.push(t.into()),
                other => return Err(format!("unknown option {other}")),
            }
        }
        if a.tables.is_empty() {
            return Err("give one or more replay tables".into());
        }
        Ok(a)
    }

    /// One run's outcome.
    struct Run {
        to_band: Option<usize>,
        /// First evaluation within 0% (the optimum), 1% and 5% of the optimum.
        to_other: [Option<usize>; 3],
        ratio: f64,
        report: serde_json::Map<String, Json>,
        seconds: f64,
    }

    fn run(replay: &Replay, strategy: Box<dyn Strategy + '_>, a: &Args, seed: u64) -> Run {
        let optimum = replay.optimum().0;
        let t0 = Instant::now();
        let mut tuner = Tuner::new(replay.space().clone(), replay)
            .max_evaluations(a.budget)
            .population_size(a.population)
            .temperature(0.8)
            .verbose(false)
            .seed(seed)
            .boxed_strategy(strategy);
        let best = tuner.tune().ok();
        let first_within = |band: f64| {
            tuner.history().iter().position(|t| t.score.is_some_and(|s| 1.0 / s <= optimum * band)).map(|i| i + 1)
        };
        let to_band = first_within(1.02);
        let to_other = [first_within(1.0), first_within(1.01), first_within(1.05)];
        let ratio = best.and_then(|b| replay.time(&b).ok().flatten()).map_or(f64::NAN, |t| t / optimum);
        Run { to_band, to_other, ratio, report: tuner.strategy_report(), seconds: t0.elapsed().as_secs_f64() }
    }

    fn median_to_band(runs: &[Run], budget: usize) -> String {
        let mut v: Vec<usize> = runs.iter().map(|r| r.to_band.unwrap_or(budget + 1)).collect();
        v.sort_unstable();
        let m =
            if v.len() % 2 == 1 { v[v.len() / 2] as f64 } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) as f64 / 2.0 };
        if m > budget as f64 {
            format!("not reached (>{budget})")
        } else {
            format!("{m}")
        }
    }

    fn sum(runs: &[Run], key: &str) -> f64 {
        runs.iter().map(|r| r.report.get(key).and_then(Json::as_f64).unwrap_or(0.0)).sum()
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let a = args()?;
        let endpoint = LlmConfig::from_env();
        let mut out = match &a.out {
            Some(p) => Some(std::fs::File::create(p)?),
            None => None,
        };
        let builtins: Vec<StrategyKind> = StrategyKind::names()
            .iter()
            .map(|n| n.parse::<StrategyKind>().expect("a known name"))
            .filter(|k| *k != StrategyKind::Llm)
            .collect();
        println!(
            "budget {}, population (batch) {}, {} seeds for built-ins, {} for llm, model batch {}",
            a.budget, a.population, a.seeds, a.llm_seeds, a.llm_batch
        );
        for path in &a.tables {
            let replay = Replay::load(path)?;
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let valid = replay.space().valid_count().unwrap_or(0);
            println!("\n### {name} ({valid} configs, optimum {:.4} ms)\n", replay.optimum().0);
            println!(
                "| strategy | runs | reached 2% | median evaluations to 2% | median to optimum | median best/optimum |"
            );
            println!("|---|---|---|---|---|---|");
            let mut rows: Vec<(String, Vec<Run>)> = Vec::new();
            for kind in &builtins {
                let runs: Vec<Run> = (0..a.seeds).map(|s| run(&replay, kind.build(), &a, s)).collect();
                let label = format!("{kind:?}").to_lowercase();
                rows.push((label, runs));
            }
            let islands = |seed| {
                let s = LlmEvolution::with_config(LlmConfig::new("http://127.0.0.1:9/v1")).max_llm_batch(0);
                run(&replay, Box::new(s), &a, seed)
            };
            rows.push(("islands (no model)".into(), (0..a.seeds).map(islands).collect()));
            if let Some(cfg) = &endpoint {
                let mut runs = Vec::new();
                for seed in 0..a.llm_seeds {
                    let mut s =
                        LlmEvolution::with_config(cfg.clone()).max_llm_batch(a.llm_batch).overlap(Overlap::Never);
                    if let Some(t) = &a.trace {
                        s = s.trace_to(t);
                    }
                    let r = run(&replay, Box::new(s), &a, seed);
                    eprintln!("{name} llm seed {seed}: to band {:?}, {:.0}s", r.to_band, r.seconds);
                    runs.push(r);
                }
                rows.push((format!("llm ({})", cfg.model), runs));
            }
            for (label, runs) in &rows {
                let reached = runs.iter().filter(|r| r.to_band.is_some()).count();
                let mut ratios: Vec<f64> = runs.iter().map(|r| r.ratio).collect();
                ratios.sort_by(|x, y| x.total_cmp(y));
                let to_opt: Vec<Run> = runs
                    .iter()
                    .map(|r| Run {
                        to_band: r.to_other[0],
                        to_other: r.to_other,
                        ratio: r.ratio,
                        report: Default::default(),
                        seconds: 0.0,
                    })
                    .collect();
                println!(
                    "| {label} | {} | {reached} | {} | {} | {:.4} |",
                    runs.len(),
                    median_to_band(runs, a.budget),
                    median_to_band(&to_opt, a.budget),
                    ratios[ratios.len() / 2]
                );
                if let Some(f) = &mut out {
                    for (seed, r) in runs.iter().enumerate() {
                        let line = json!({"table": name, "strategy": label, "seed": seed, "to_band": r.to_band,
                            "to_optimum": r.to_other[0], "to_1pct": r.to_other[1], "to_5pct": r.to_other[2],
                            "ratio": r.ratio, "seconds": r.seconds, "report": r.report});
                        writeln!(f, "{line}")?;
                    }
                }
            }
            if let Some((label, runs)) = rows.iter().find(|(l, _)| l.starts_with("llm")) {
                let calls = sum(runs, "llm_calls");
                let proposed = sum(runs, "llm_proposed");
                let secs = sum(runs, "llm_seconds");
                let mut reasons = std::collections::BTreeMap::<String, f64>::new();
                for r in runs {
                    if let Some(Json::Object(m)) = r.report.get("llm_rejected_by_reason") {
                        for (k, v) in m {
                            *reasons.entry(k.clone()).or_default() += v.as_f64().unwrap_or(0.0);
                        }
                    }
                }
                println!(
                    "\n{label}: {calls} calls, {:.0} prompt + {:.0} completion tokens per call, {:.1} s per call, \
                     {:.2} s per proposal; {proposed} proposed, {} accepted, rejected {:?}; best improved by the \
                     model {} times, by classical operators {} times; {} errors, {} fell back",
                    sum(runs, "prompt_tokens") / calls.max(1.0),
                    sum(runs, "completion_tokens") / calls.max(1.0),
                    secs / calls.max(1.0),
                    secs / proposed.max(1.0),
                    sum(runs, "llm_accepted"),
                    reasons,
                    sum(runs, "improvements_llm"),
                    sum(runs, "improvements_classical"),
                    sum(runs, "llm_errors"),
                    runs.iter().filter(|r| r.report.get("fallback") == Some(&Json::Bool(true))).count(),
                );
            }
        }
        Ok(())
    }
}
