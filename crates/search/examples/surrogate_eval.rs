//! Search efficiency of the strategies on replay tables and synthetic spaces: for each problem, strategy
//! and budget, the fraction of seeds whose best config is within 2% of the optimum, the median
//! best/optimum time ratio, and the median evaluation that first reached the 2% band.
//!
//! ```text
//! cargo run --release -p tuner-runtime --example surrogate_eval -- \
//!     [--seeds 30] [--budgets 50,100] [--population 20] [--strategies surrogate,local,de,random] \
//!     [--problems synthetic,synthetic-big,clustered,tests/data/reduce.json,…]
//! ```
//!
//! Problems are table paths (Kernel Tuner format) or the names of the synthetic problems in
//! `tests/synthetic/mod.rs`.
//!
//! `--start reference` measures each table's reference config (the kernel's default) first, as a GPU
//! tune measures the default first; `--start '{"bm": 64, …}'` measures that config first; the default
//! `none` starts cold. `--seed-base B` runs seeds B..B+seeds. Environment: `SURROGATE_*` overrides a surrogate setting (see
//! `build`), `EVAL_PER_SEED` prints each seed's best and first evaluation in the band to stderr, and
//! `EVAL_VERBOSE` makes every run verbose.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use std::time::Instant;

use tuner_search::strategy::{Surrogate, SurrogateSettings};
use tuner_search::{Config, Outcome, Replay, Space, StrategyKind, Tuner};

struct Problem {
    name: String,
    space: Space,
    optimum: f64,
    outcome: Box<dyn Fn(&Config) -> Outcome>,
    /// The kernel's default config, from the table's `.meta.json` ([`Replay::reference`]).
    reference: Option<Config>,
}

fn load(name: &str) -> Result<Problem, Box<dyn std::error::Error>> {
    let synth = match name {
        "synthetic" => Some(synthetic::gemm(false)),
        "synthetic-big" => Some(synthetic::gemm(true)),
        "clustered" => Some(synthetic::clustered_failures()),
        _ => None,
    };
    if let Some(p) = synth {
        eprintln!(
            "{}: {} valid configs, {} fail, {} within 2% of the optimum",
            p.name,
            p.times.len(),
            p.failures(),
            p.within(0.02)
        );
        let space = p.space.clone();
        let optimum = p.optimum;
        return Ok(Problem {
            name: p.name.clone(),
            space,
            optimum,
            outcome: Box::new(move |c| p.outcome(c)),
            reference: None,
        });
    }
    let replay = Replay::load(name)?;
    let optimum = replay.optimum().0;
    let space = replay.space().clone();
    let within = space
        .valid_points()
        .map(|all| {
            all.iter()
                .filter(|p| replay.time(&space.config(p)).ok().flatten().is_some_and(|t| t <= optimum * 1.02))
                .count()
        })
        .unwrap_or(0);
    eprintln!("{name}: {} configs, {within} within 2% of the optimum", space.valid_count().unwrap_or(0));
    let reference = replay.reference().cloned();
    Ok(Problem { name: name.to_owned(), space, optimum, outcome: Box::new(move |c| replay.outcome(c)), reference })
}

/// The config of a JSON object of parameter values.
fn config_of(space: &Space, json: &serde_json::Value) -> Result<Config, Box<dyn std::error::Error>> {
    let object = json.as_object().ok_or("a config is a JSON object of parameter values")?;
    Ok(space.config_of_json(object)?)
}

fn strategy(name: &str) -> Result<StrategyKind, String> {
    Ok(match name {
        "surrogate" => StrategyKind::Surrogate,
        "local" => StrategyKind::Local,
        "de" => StrategyKind::De,
        "random" => StrategyKind::Random,
        // With the endpoint in the environment (OPENAI_BASE_URL, …); without one, hybrid is the surrogate.
        "hybrid" => StrategyKind::Hybrid,
        "llm" => StrategyKind::Llm,
        other => return Err(format!("unknown strategy `{other}`")),
    })
}

/// The strategy; each of the surrogate's settings can be overridden for experiments by an environment
/// variable named for it: `SURROGATE_EXPLORE`, `SURROGATE_MAX_BATCH`, … (the list below).
fn build(kind: StrategyKind) -> Box<dyn tuner_search::Strategy> {
    if kind != StrategyKind::Surrogate {
        return kind.build();
    }
    let mut s = SurrogateSettings::default();
    let var = |k: &str| std::env::var(format!("SURROGATE_{k}")).ok().and_then(|v| v.parse::<f64>().ok());
    macro_rules! overrides {
        ($($name:literal => $field:ident as $conv:expr),* $(,)?) => {
            $(if let Some(v) = var($name) { s.$field = $conv(v); })*
        };
    }
    overrides! {
        "EXPLORE" => explore as |v| v,
        "PENALTY" => penalty as |v| v,
        "FEASIBILITY_POWER" => feasibility_power as |v| v,
        "TOP_SEEDS" => top_seeds as |v: f64| v as usize,
        "TREES" => trees as |v: f64| v as usize,
        "CLIMB_STEPS" => climb_steps as |v: f64| v as usize,
        "MAX_BATCH" => max_batch as |v: f64| v as usize,
        "SEQUENTIAL_BATCH" => sequential_batch as |v: f64| v as usize,
        "MAX_PAIR_PARAMS" => max_pair_params as |v: f64| v as usize,
        "NEIGHBOURHOOD" => neighbourhood as |v: f64| v as usize,
        "INIT" => init as |v: f64| Some(v as usize),
        "INCUMBENT_EVERY" => incumbent_every as |v: f64| v as usize,
    }
    Box::new(Surrogate::with_settings(s))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str, default: &str| -> String {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
    };
    let seeds: u64 = get("--seeds", "30").parse()?;
    let seed_base: u64 = get("--seed-base", "0").parse()?;
    let population: usize = get("--population", "20").parse()?;
    // `--start reference`: each run measures the table's reference config first (as a GPU tune does);
    // `--start '{"bm": 128, …}'` measures that config first.
    let start = get("--start", "none");
    let budgets: Vec<usize> = get("--budgets", "50,100").split(',').map(str::parse).collect::<Result<_, _>>()?;
    let strategies: Vec<String> = get("--strategies", "surrogate,local,de,random").split(',').map(Into::into).collect();
    let problems: Vec<String> = get(
        "--problems",
        "tests/data/reduce.json,tests/data/stencil.json,tests/data/transpose.json,synthetic,synthetic-big,clustered",
    )
    .split(',')
    .map(Into::into)
    .collect();

    println!("| problem | strategy | budget | within 2% | median best/optimum | median evals to 2% | s/run |");
    println!("|---|---|---|---|---|---|---|");
    for pname in &problems {
        let problem = load(pname)?;
        for sname in &strategies {
            let kind = strategy(sname)?;
            for &budget in &budgets {
                let t0 = Instant::now();
                let mut hits = 0;
                let mut ratios = Vec::new();
                let mut firsts = Vec::new();
                for seed in seed_base..seed_base + seeds {
                    let objective = |c: &Config| match (problem.outcome)(c) {
                        Outcome::Score(s) => s,
                        Outcome::Invalid(_) => 0.0,
                    };
                    let mut tuner = Tuner::new(problem.space.clone(), objective)
                        .max_evaluations(budget)
                        .population_size(population)
                        .seed(seed)
                        .verbose(std::env::var_os("EVAL_VERBOSE").is_some())
                        .boxed_strategy(build(kind));
                    let first: Vec<Config> = match start.as_str() {
                        "none" => Vec::new(),
                        "reference" => problem.reference.iter().cloned().collect(),
                        json => vec![config_of(&problem.space, &serde_json::from_str(json)?)?],
                    };
                    tuner = tuner.start_with(&first)?;
                    let Ok(_) = tuner.tune() else { continue };
                    let best = 1.0 / tuner.best_score().expect("tune() found a valid config");
                    let ratio = best / problem.optimum;
                    if ratio <= 1.02 {
                        hits += 1;
                    }
                    ratios.push(ratio);
                    let first = tuner
                        .history()
                        .iter()
                        .position(|t| t.score.is_some_and(|s| 1.0 / s <= problem.optimum * 1.02))
                        .map_or(f64::INFINITY, |i| (i + 1) as f64);
                    firsts.push(first);
                    if std::env::var_os("EVAL_PER_SEED").is_some() {
                        let b = tuner.best_config().expect("a best config");
                        eprintln!("seed {seed} budget {budget}: {ratio:.4} first {first} {b}");
                    }
                }
                let secs = t0.elapsed().as_secs_f64() / seeds as f64;
                println!(
                    "| {} | {} | {} | {:.2} | {:.4} | {} | {:.3} |",
                    problem.name,
                    sname,
                    budget,
                    hits as f64 / seeds as f64,
                    median(&mut ratios),
                    match median(&mut firsts) {
                        f if f.is_finite() => format!("{f}"),
                        _ => "-".into(),
                    },
                    secs
                );
            }
        }
    }
    Ok(())
}
