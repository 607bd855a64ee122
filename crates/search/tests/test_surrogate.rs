//! The surrogate strategy: failures stay out of the performance model, runs are reproducible by seed,
//! every proposal is valid and new, and it finds the 2% band on our replay tables.

mod synthetic;

use std::cell::RefCell;
use std::rc::Rc;

use tuner_search::strategy::{Context, Surrogate, SurrogateSettings, MAX_BATCH};
use tuner_search::{Config, Objective, Point, Replay, Space, Strategy, Trial, Tuner};

fn data(name: &str) -> String {
    format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Wraps the surrogate and records every proposal that is invalid, already evaluated, repeated within
/// its batch, or a batch shorter than the unseen valid points allow.
struct Checked {
    inner: Surrogate,
    problems: Rc<RefCell<Vec<String>>>,
    proposals: Rc<RefCell<usize>>,
}

impl Strategy for Checked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        let out = self.inner.propose(ctx, n);
        let mut problems = self.problems.borrow_mut();
        for (i, p) in out.iter().enumerate() {
            if !ctx.space.is_valid(p) {
                problems.push(format!("invalid proposal {p:?}"));
            }
            if ctx.seen(p) {
                problems.push(format!("proposal {p:?} was evaluated already"));
            }
            if out[..i].contains(p) {
                problems.push(format!("proposal {p:?} repeated in its batch"));
            }
        }
        let unseen = ctx.space.valid_count().map_or(usize::MAX, |c| c - ctx.seen.len());
        if out.len() < n.min(unseen) {
            problems.push(format!("short batch: {} of {} ({} unseen)", out.len(), n, unseen));
        }
        *self.proposals.borrow_mut() += out.len();
        out
    }

    fn observe(&mut self, ctx: &mut Context<'_>, batch: &[Trial]) {
        self.inner.observe(ctx, batch);
    }
}

/// Runs the surrogate and returns the history, checking every proposal along the way.
fn run(space: &Space, objective: impl Objective, budget: usize, population: usize, seed: u64) -> Vec<Trial> {
    let problems = Rc::new(RefCell::new(Vec::new()));
    let proposals = Rc::new(RefCell::new(0));
    let strategy = Checked { inner: Surrogate::new(), problems: problems.clone(), proposals: proposals.clone() };
    let mut tuner = Tuner::new(space.clone(), objective)
        .max_evaluations(budget)
        .population_size(population)
        .seed(seed)
        .verbose(false)
        .strategy(strategy);
    let _ = tuner.tune();
    assert!(problems.borrow().is_empty(), "seed {seed}: {:?}", problems.borrow());
    // Every evaluation came from the surrogate itself, none from the tuner's random top-up.
    assert_eq!(*proposals.borrow(), tuner.evaluation_count(), "seed {seed}");
    tuner.history().to_vec()
}

fn best_time(history: &[Trial]) -> Option<f64> {
    history.iter().filter_map(|t| t.score).map(|s| 1.0 / s).min_by(f64::total_cmp)
}

/// How many of `seeds` runs end within 2% of the optimum.
fn hits(problem: &synthetic::Problem, objective: impl Fn(&Config) -> f64, budget: usize, seeds: u64) -> u64 {
    (0..seeds)
        .filter(|&seed| {
            let history = run(&problem.space, &objective, budget, 20, seed);
            // Judge by the true table: a failure scored as slow is still a failure.
            history
                .iter()
                .any(|t| problem.times.get(&t.point).copied().flatten().is_some_and(|x| x <= problem.optimum * 1.02))
        })
        .count() as u64
}

#[test]
fn failures_around_the_optimum_do_not_hide_it() {
    let problem = synthetic::clustered_failures();
    let failing = problem.failures();
    assert!(failing * 10 >= problem.times.len(), "the table fails often: {failing} of {}", problem.times.len());
    let seeds = 20;
    let honest = |c: &Config| problem.outcome(c).score().unwrap_or(0.0);
    let found = hits(&problem, honest, 100, seeds);
    assert!(found >= 17, "found the optimum with {found} of {seeds} seeds");
    // The trap the surrogate avoids: a failure fed to the model as a very slow measurement (Kernel
    // Tuner's bayes_opt placeholder) makes the optimum's neighbourhood look bad.
    let placeholder = |c: &Config| problem.outcome(c).score().unwrap_or(1e-3 / problem.optimum);
    let trapped = hits(&problem, placeholder, 100, seeds);
    eprintln!("clustered failures, {seeds} seeds: {found} found the optimum, {trapped} with failures as slow scores");
    assert!(found >= trapped + 10, "honest failures {found} vs failures as slow scores {trapped}");
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let problem = synthetic::gemm(false);
    let points = |seed| run(&problem.space, &problem, 60, 20, seed).into_iter().map(|t| t.point).collect::<Vec<_>>();
    let a = points(3);
    assert_eq!(a, points(3));
    assert_ne!(a, points(4));
}

#[test]
fn proposals_are_valid_and_new_on_a_space_too_big_to_scan() {
    let problem = synthetic::gemm(true);
    // More valid points than the surrogate scores exhaustively (its `FULL_SCAN`, 4096).
    assert!(problem.space.valid_count().is_some_and(|n| n > 4_096));
    for seed in 0..2 {
        let history = run(&problem.space, &problem, 60, 20, seed);
        assert_eq!(history.len(), 60);
    }
}

#[test]
fn runs_a_space_to_exhaustion_without_repeats() {
    let space =
        Space::builder().param("x", 0..6).param("y", 0..5).constraint("x + y != 3").build().expect("a valid space");
    let objective = |c: &Config| {
        if c.int("x") == Some(0) {
            0.0
        } else {
            1.0 + (c.int("x").unwrap_or(0) * c.int("y").unwrap_or(0)) as f64
        }
    };
    let history = run(&space, objective, 100, 7, 1);
    assert_eq!(history.len(), space.valid_count().expect("small space"));
}

/// The fraction of seeds whose best config is within 2% of the table's optimum.
fn success(table: &str, budget: usize, seeds: u64) -> f64 {
    let replay = Replay::load(data(table)).expect("committed table loads");
    let optimum = replay.optimum().0;
    let mut hits = 0;
    for seed in 0..seeds {
        let history = run(replay.space(), &replay, budget, 20, seed);
        if best_time(&history).is_some_and(|t| t <= optimum * 1.02) {
            hits += 1;
        }
    }
    hits as f64 / seeds as f64
}

#[test]
fn finds_the_two_percent_band_on_the_committed_tables() {
    for (table, budget, floor) in [
        ("reduce.json", 50, 0.9),
        ("stencil.json", 50, 0.9),
        ("transpose.json", 50, 0.9),
        ("reduce.json", 100, 1.0),
        ("stencil.json", 100, 1.0),
        ("transpose.json", 100, 1.0),
    ] {
        let got = success(table, budget, 20);
        assert!(got >= floor, "{table} at {budget} evaluations: {got} of seeds within 2%, want >= {floor}");
    }
}

#[test]
fn negative_scores_are_modelled_too() {
    // A closure may score `-time` (higher is still better): the model must fit on it, not drop it.
    let replay = Replay::load(data("reduce.json")).expect("committed table loads");
    let optimum = replay.optimum().0;
    let objective = |c: &Config| replay.time(c).ok().flatten().map_or(0.0, |t| -t);
    let mut tuner = Tuner::new(replay.space().clone(), objective)
        .max_evaluations(60)
        .seed(1)
        .verbose(false)
        .strategy(Surrogate::new());
    let best = tuner.tune().expect("valid configs exist");
    let fits = tuner.strategy_report().get("model_fits").and_then(|v| v.as_u64()).unwrap_or(0);
    assert!(fits >= 1, "the model was fitted {fits} times");
    let time = replay.time(&best).expect("recorded").expect("ran");
    assert!(time <= optimum * 1.02, "best {time} vs optimum {optimum}");
}

/// Scores a replay table, one config at a time or (batched) a batch at a time, recording batch sizes.
struct Table {
    replay: Replay,
    batched: bool,
    batches: Rc<RefCell<Vec<usize>>>,
}

impl Objective for Table {
    fn evaluate(&mut self, config: &Config) -> tuner_search::Outcome {
        self.replay.outcome(config)
    }

    fn batched(&self) -> bool {
        self.batched
    }

    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<tuner_search::Outcome> {
        self.batches.borrow_mut().push(configs.len());
        configs.iter().map(|c| self.replay.outcome(c)).collect()
    }
}

#[test]
fn one_config_per_model_round_by_default_and_batches_of_max_batch_when_asked() {
    let replay = || Replay::load(data("stencil.json")).expect("committed table loads");
    let space = replay().space().clone();
    let budget = 60;
    let tune = |batched: bool, settings: SurrogateSettings| {
        let batches = Rc::new(RefCell::new(Vec::new()));
        let table = Table { replay: replay(), batched, batches: batches.clone() };
        let mut tuner = Tuner::new(space.clone(), table)
            .max_evaluations(budget)
            .population_size(20)
            .seed(3)
            .verbose(false)
            .strategy(Surrogate::with_settings(settings));
        tuner.tune().expect("valid configs exist");
        let fits = tuner.strategy_report().get("model_fits").and_then(|v| v.as_u64()).expect("a fit count");
        let batches = batches.borrow().clone();
        (fits, batches)
    };
    let init = 16; // the space-filling start, proposed before any model is fitted
                   // By default, on a batched objective (the GPU bench) as on any other, the model is refitted after
                   // every result once the start is measured.
    let (fits, batches) = tune(true, SurrogateSettings::default());
    assert_eq!(batches.iter().sum::<usize>(), budget);
    assert!(batches.iter().filter(|&&b| b > 1).count() <= 1, "only the start comes as one batch: {batches:?}");
    assert!(fits as usize >= budget - init, "{fits} fits for {budget} evaluations");
    // Asked for batches of 10 (GPU wall time over evaluations): at most 10 configs and one fit a batch.
    let ten = SurrogateSettings { max_batch: MAX_BATCH, ..SurrogateSettings::default() };
    let (fits, batches) = tune(true, ten.clone());
    assert_eq!(batches.iter().sum::<usize>(), budget);
    assert!(batches.iter().all(|&b| b <= 10), "batches {batches:?}");
    assert!(batches.iter().filter(|&&b| b == 10).count() >= 3, "batches {batches:?}");
    assert!(fits as usize <= batches.len(), "{fits} fits for {} batches", batches.len());
    // On a one-at-a-time objective (a closure, a table) that setting changes nothing: a round per result.
    let (fits, batches) = tune(false, ten);
    assert!(batches.is_empty(), "a one-at-a-time objective gets no batch calls");
    assert!(fits as usize >= budget - init, "{fits} fits for {budget} evaluations");
}

/// What the tuner asked of a [`Prefetching`] objective, in order.
enum Call {
    Prefetch(Vec<Config>),
    Batch(Vec<Config>),
}

/// A replay table that evaluates batches (as the GPU bench does) and records every call.
struct Prefetching {
    replay: Replay,
    calls: Rc<RefCell<Vec<Call>>>,
}

impl Objective for Prefetching {
    fn evaluate(&mut self, config: &Config) -> tuner_search::Outcome {
        self.evaluate_batch(std::slice::from_ref(config)).pop().expect("one outcome")
    }

    fn batched(&self) -> bool {
        true
    }

    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<tuner_search::Outcome> {
        self.calls.borrow_mut().push(Call::Batch(configs.to_vec()));
        configs.iter().map(|c| self.replay.outcome(c)).collect()
    }

    fn prefetch(&mut self, configs: &[Config]) {
        self.calls.borrow_mut().push(Call::Prefetch(configs.to_vec()));
    }
}

#[test]
fn prefetch_hints_are_new_valid_configs_that_the_surrogate_often_picks_next() {
    let path = format!("{}/../../tables/h100/sgemm.json", env!("CARGO_MANIFEST_DIR"));
    let replay = Replay::load(&path).expect("committed table loads");
    let space = replay.space().clone();
    let budget = 100;
    let calls = Rc::new(RefCell::new(Vec::new()));
    let mut tuner = Tuner::new(space.clone(), Prefetching { replay, calls: calls.clone() })
        .max_evaluations(budget)
        .seed(2)
        .verbose(false)
        .strategy(Surrogate::new());
    tuner.tune().expect("valid configs exist");
    let calls = calls.borrow();
    let (mut seen, mut hinted) = (Vec::<Config>::new(), Vec::<Config>::new());
    let (mut modelled, mut hits, mut prefetches) = (0, 0, 0);
    for (i, call) in calls.iter().enumerate() {
        match call {
            Call::Prefetch(hints) => {
                prefetches += 1;
                assert!(!hints.is_empty() && hints.len() <= tuner_search::tuner::PREFETCH, "{} hints", hints.len());
                let Some(Call::Batch(next)) = calls.get(i + 1) else { panic!("a prefetch precedes a batch") };
                for h in hints {
                    assert!(space.point(h).is_ok_and(|p| space.is_valid(&p)), "hint {h} is not in the space");
                    assert!(!seen.contains(h) && !next.contains(h), "hint {h} is evaluated already or now");
                }
                hinted.extend(hints.iter().cloned());
            }
            Call::Batch(batch) => {
                // Once the model runs (every batch after the first prefetch), how many picks were hinted.
                if prefetches > 0 {
                    modelled += batch.len();
                    hits += batch.iter().filter(|c| hinted.contains(c)).count();
                }
                seen.extend(batch.iter().cloned());
            }
        }
    }
    assert_eq!(seen.len(), budget);
    assert!(modelled >= budget - 20, "the model picked {modelled} configs");
    let rate = hits as f64 / modelled as f64;
    eprintln!("{hits} of {modelled} picks were hinted before ({rate:.2})");
    assert!(rate >= 0.5, "{hits} of {modelled} picks were hinted before");
}

#[test]
fn from_the_kernels_default_it_finds_the_sgemm_band_in_most_seeds_by_50_evaluations() {
    // The committed H100 SGEMM table (3 of 2 200 configs within 2%) with its recorder's summary beside
    // it: the reference config is the SGEMM spec's default, which a tune on the GPU measures first.
    let path = format!("{}/../../tables/h100/sgemm.json", env!("CARGO_MANIFEST_DIR"));
    let replay = Replay::load(&path).expect("committed table loads");
    let reference = replay.reference().expect("the table's .meta.json names the reference config").clone();
    let optimum = replay.optimum().0;
    let seeds = 20;
    let mut hits = 0;
    for seed in 0..seeds {
        let mut tuner = Tuner::new(replay.space().clone(), &replay)
            .max_evaluations(50)
            .seed(seed)
            .verbose(false)
            .strategy(Surrogate::new())
            .start_with(std::slice::from_ref(&reference))
            .expect("the reference is a recorded config");
        tuner.tune().expect("valid configs exist");
        assert_eq!(tuner.history()[0].config, reference, "the default is measured first");
        assert_eq!(tuner.evaluation_count(), 50, "and counts against the budget");
        hits += replay.time(tuner.best_config().unwrap()).unwrap().is_some_and(|t| t <= optimum * 1.02) as u64;
    }
    // 0.83 of seeds 0..29 and 0.89 of 0..99 (docs/surrogate.md); cold, 0.63 and 0.61.
    assert!(hits * 10 >= seeds * 7, "{hits} of {seeds} seeds within 2% of the optimum at 50 evaluations");
}
